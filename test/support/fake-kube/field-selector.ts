/**
 * Field selectors (`metadata.name=x,status.phase!=Running`): only `=`, `==` and `!=`, and only the
 * fields the resource supports; others answer 400 `field label not supported`, as the apiserver does.
 */
import { badRequest } from './api-status.js';

/** The selectable fields of a resource: field path -> its value in an object. */
export type SelectableFields<T> = Readonly<Record<string, (object: T) => string>>;

export type FieldMatcher<T> = (object: T) => boolean;

export function parseFieldSelector<T>(
  selector: string | undefined,
  fields: SelectableFields<T>,
): FieldMatcher<T> {
  if (selector === undefined || selector.trim() === '') return () => true;
  const requirements = selector.split(',').map((term) => {
    const match = /^\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*$/.exec(term);
    if (!match) throw badRequest(`invalid selector: '${selector}'; can't understand '${term}'`);
    const [, field = '', operator = '', value = ''] = match;
    const read = fields[field];
    if (read === undefined) throw badRequest(`field label not supported: ${field}`);
    return { read, negate: operator === '!=', value };
  });
  return (object) => requirements.every(({ read, negate, value }) => (read(object) === value) !== negate);
}
