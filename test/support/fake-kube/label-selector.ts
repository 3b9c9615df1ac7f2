/**
 * Label selectors as apimachinery's labels.Parse reads them: comma-separated requirements, each
 * equality-based (`a=b`, `a==b`, `a!=b`), set-based (`a in (x,y)`, `a notin (x)`), existence (`a`,
 * `!a`) or numeric (`a>1`, `a<3`). Keys and values are checked like label keys and values; a
 * malformed selector throws a 400 BadRequest as the list and watch handlers answer.
 */
import { badRequest } from './api-status.js';
import { labelValueProblems, qualifiedNameProblems } from './name-rules.js';

type Operator = 'exists' | '!' | '=' | '==' | '!=' | 'in' | 'notin' | '>' | '<';

interface Requirement {
  key: string;
  operator: Operator;
  values: string[];
}

export type LabelMatcher = (labels: Readonly<Record<string, string>> | undefined) => boolean;

type Token =
  | { kind: 'identifier'; text: string }
  | { kind: 'symbol'; text: '(' | ')' | ',' | '!' | '!=' | '=' | '==' | '<' | '>' }
  | { kind: 'end'; text: '' };

const SYMBOL_START = new Set(['(', ')', ',', '!', '=', '<', '>']);
const WHITESPACE = /\s/;

function tokenize(selector: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < selector.length) {
    const ch = selector[i] ?? '';
    if (WHITESPACE.test(ch)) {
      i += 1;
      continue;
    }
    if (SYMBOL_START.has(ch)) {
      const two = selector.slice(i, i + 2);
      if (two === '!=' || two === '==') {
        tokens.push({ kind: 'symbol', text: two });
        i += 2;
      } else {
        tokens.push({ kind: 'symbol', text: ch as '(' | ')' | ',' | '!' | '=' | '<' | '>' });
        i += 1;
      }
      continue;
    }
    let end = i;
    while (end < selector.length) {
      const c = selector[end] ?? '';
      if (WHITESPACE.test(c) || SYMBOL_START.has(c)) break;
      end += 1;
    }
    tokens.push({ kind: 'identifier', text: selector.slice(i, end) });
    i = end;
  }
  tokens.push({ kind: 'end', text: '' });
  return tokens;
}

class Parser {
  private position = 0;
  constructor(private readonly tokens: Token[]) {}

  private peek(): Token {
    return this.tokens[this.position] ?? { kind: 'end', text: '' };
  }

  private next(): Token {
    const token = this.peek();
    if (this.position < this.tokens.length - 1) this.position += 1;
    return token;
  }

  private fail(found: Token, expected: string): never {
    throw badRequest(`unable to parse requirement: found '${found.text}', expected: ${expected}`);
  }

  parse(): Requirement[] {
    const requirements: Requirement[] = [];
    if (this.peek().kind === 'end') return requirements;
    for (;;) {
      requirements.push(this.requirement());
      const after = this.next();
      if (after.kind === 'end') return requirements;
      if (after.text !== ',') this.fail(after, "',' or 'end of string'");
    }
  }

  private requirement(): Requirement {
    const first = this.next();
    if (first.kind === 'symbol' && first.text === '!') {
      const key = this.next();
      if (key.kind !== 'identifier') this.fail(key, "identifier after '!'");
      return { key: key.text, operator: '!', values: [] };
    }
    if (first.kind !== 'identifier') this.fail(first, 'identifier');
    const op = this.peek();
    if (op.kind === 'end' || op.text === ',') return { key: first.text, operator: 'exists', values: [] };
    this.next();
    if (op.kind === 'identifier' && (op.text === 'in' || op.text === 'notin')) {
      return { key: first.text, operator: op.text, values: this.valueSet() };
    }
    if (op.kind === 'symbol' && (op.text === '=' || op.text === '==' || op.text === '!=')) {
      return { key: first.text, operator: op.text, values: [this.singleValue()] };
    }
    if (op.kind === 'symbol' && (op.text === '>' || op.text === '<')) {
      const value = this.singleValue();
      if (!/^-?[0-9]+$/.test(value)) {
        throw badRequest(
          `unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer`,
        );
      }
      return { key: first.text, operator: op.text, values: [value] };
    }
    return this.fail(op, "'=', '!=', '==', 'in', notin'");
  }

  /** An equality value; empty when the requirement ends right after the operator (`a=`). */
  private singleValue(): string {
    const token = this.peek();
    if (token.kind === 'end' || token.text === ',') return '';
    if (token.kind !== 'identifier') this.fail(token, 'identifier');
    this.next();
    return token.text;
  }

  private valueSet(): string[] {
    const open = this.next();
    if (open.text !== '(') this.fail(open, "'('");
    const values: string[] = [];
    for (;;) {
      const token = this.next();
      if (token.text === ')' && token.kind === 'symbol') return values;
      if (token.kind === 'identifier') {
        values.push(token.text);
        const after = this.next();
        if (after.text === ')' && after.kind === 'symbol') return values;
        if (after.text !== ',') this.fail(after, "',' or ')'");
        continue;
      }
      if (token.text === ',') {
        // `(a,,b)` and `(,a)` carry an empty value, as apimachinery reads them.
        values.push('');
        continue;
      }
      this.fail(token, "identifier, ',' or ')'");
    }
  }
}

function validate(requirement: Requirement): void {
  const keyProblems = qualifiedNameProblems(requirement.key);
  if (keyProblems.length > 0) {
    throw badRequest(
      `unable to parse requirement: key: Invalid value: ${JSON.stringify(requirement.key)}: ${keyProblems.join('; ')}`,
    );
  }
  if (
    (requirement.operator === 'in' || requirement.operator === 'notin') &&
    requirement.values.length === 0
  ) {
    throw badRequest(
      "unable to parse requirement: values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty",
    );
  }
  requirement.values.forEach((value, index) => {
    const problems = labelValueProblems(value);
    if (problems.length > 0) {
      throw badRequest(
        `unable to parse requirement: values[${index}][${requirement.key}]: Invalid value: ${JSON.stringify(value)}: ${problems.join('; ')}`,
      );
    }
  });
}

function matches(requirement: Requirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.hasOwn(labels, requirement.key);
  const value = labels[requirement.key];
  switch (requirement.operator) {
    case 'exists':
      return has;
    case '!':
      return !has;
    case '=':
    case '==':
    case 'in':
      return has && value !== undefined && requirement.values.includes(value);
    case '!=':
    case 'notin':
      return !has || value === undefined || !requirement.values.includes(value);
    case '>':
    case '<': {
      if (!has || value === undefined || !/^-?[0-9]+$/.test(value)) return false;
      const actual = Number(value);
      const bound = Number(requirement.values[0]);
      return requirement.operator === '>' ? actual > bound : actual < bound;
    }
  }
}

/** Parses `selector` (undefined or empty selects everything); throws a 400 ApiError when malformed. */
export function parseLabelSelector(selector: string | undefined): LabelMatcher {
  if (selector === undefined || selector.trim() === '') return () => true;
  const requirements = new Parser(tokenize(selector)).parse();
  for (const requirement of requirements) validate(requirement);
  return (labels) => requirements.every((requirement) => matches(requirement, labels ?? {}));
}
