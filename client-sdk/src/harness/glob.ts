/** Glob patterns as the glob_files tool takes them: `*`, `?`, `**`, `[abc]`, `[!abc]`, `{a,b}`. */

/** A RegExp matching whole `/`-separated relative paths. `*` and `?` stay within one segment. */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  let braces = 0;
  for (let i = 0; i < glob.length; i++) {
    const char = glob.charAt(i);
    if (char === '*' && glob.charAt(i + 1) === '*') {
      const wholeSegment = (i === 0 || glob.charAt(i - 1) === '/') && glob.charAt(i + 2) === '/';
      // `**/` matches any number of directories, none included; a bare `**` anything at all.
      source += wholeSegment ? '(?:.*/)?' : '.*';
      i += wholeSegment ? 2 : 1;
    } else if (char === '*') {
      source += '[^/]*';
    } else if (char === '?') {
      source += '[^/]';
    } else if (char === '[' && glob.indexOf(']', i + 2) !== -1) {
      const end = glob.indexOf(']', i + 2);
      const body = glob.slice(i + 1, end).replace(/\\/g, '\\\\');
      source += body.startsWith('!') ? `[^${body.slice(1)}]` : `[${body.replace(/^\^/, '\\^')}]`;
      i = end;
    } else if (char === '{') {
      braces++;
      source += '(?:';
    } else if (char === '}' && braces > 0) {
      braces--;
      source += ')';
    } else if (char === ',' && braces > 0) {
      source += '|';
    } else {
      source += escapeAll(char);
    }
  }
  // An unclosed `{` is taken literally rather than failing the pattern.
  if (braces > 0) return new RegExp(`^${escapeAll(glob)}$`);
  return new RegExp(`^${source}$`);
}

function escapeAll(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
