// Where each value of a JSON text sits: JSON pointer (RFC 6901) → the 1-based line its value starts on. The
// API's contract diagnostics name a pointer; the queue page turns it into a line of the text the operator
// pasted, so the mistake is shown where it was written. Pure (no DOM), so the tests call it directly.

export class JsonTextError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(`${message} (line ${line}, column ${column})`);
  }
}

// Deeper nesting than this is refused (the API refuses it too), so the recursion cannot exhaust the stack.
const MAX_DEPTH = 256;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

const escapeToken = (key: string) => key.replace(/~/g, "~0").replace(/\//g, "~1");

// The line of every value in `text`, by pointer ("" is the whole document). Throws JsonTextError, with
// where, when the text is not one JSON value. A key given twice keeps its last place, as JSON.parse keeps
// its last value.
export function valueLines(text: string): Map<string, number> {
  const lines = new Map<string, number>();
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  let lineStart = 0;
  const fail = (what: string): never => {
    throw new JsonTextError(what, line, i - lineStart + 1);
  };
  const space = () => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 10) {
        i++;
        line++;
        lineStart = i;
      } else if (c === 32 || c === 9 || c === 13) i++;
      else return;
    }
  };
  const string = (): string => {
    let j = i + 1;
    for (;;) {
      if (j >= text.length) fail("a string is not closed");
      const c = text.charCodeAt(j);
      if (c === 34) break;
      if (c < 32) {
        i = j;
        fail("a string holds a raw control character or line break (write it as \\n, \\t, …)");
      }
      j += c === 92 ? 2 : 1;
    }
    const raw = text.slice(i, j + 1);
    let s = "";
    try {
      s = JSON.parse(raw) as string;
    } catch {
      fail("a string holds a bad escape");
    }
    i = j + 1;
    return s;
  };
  const expect = (ch: string, what: string) => {
    space();
    if (text[i] !== ch) fail(i >= text.length ? `the text ends where ${what} was expected` : `expected ${what}`);
    i++;
  };
  const value = (path: string, depth: number): void => {
    space();
    if (depth > MAX_DEPTH) fail(`nested deeper than ${MAX_DEPTH}`);
    lines.set(path, line);
    const c = text[i];
    if (c === "{") {
      i++;
      space();
      if (text[i] === "}") {
        i++;
        return;
      }
      for (;;) {
        space();
        if (text[i] !== '"') fail(i >= text.length ? "the text ends inside an object" : 'expected a property name in double quotes');
        const key = string();
        expect(":", "':' after a property name");
        value(path + "/" + escapeToken(key), depth + 1);
        space();
        if (text[i] === ",") i++;
        else if (text[i] === "}") {
          i++;
          return;
        } else fail(i >= text.length ? "the text ends inside an object" : "expected ',' or '}'");
      }
    }
    if (c === "[") {
      i++;
      space();
      if (text[i] === "]") {
        i++;
        return;
      }
      for (let n = 0; ; n++) {
        value(path + "/" + n, depth + 1);
        space();
        if (text[i] === ",") i++;
        else if (text[i] === "]") {
          i++;
          return;
        } else fail(i >= text.length ? "the text ends inside an array" : "expected ',' or ']'");
      }
    }
    if (c === '"') {
      string();
      return;
    }
    for (const word of ["true", "false", "null"])
      if (text.startsWith(word, i)) {
        i += word.length;
        return;
      }
    NUMBER.lastIndex = i;
    if (NUMBER.test(text)) {
      i = NUMBER.lastIndex;
      return;
    }
    fail(i >= text.length ? "the text ends where a value was expected" : `unexpected '${c}'`);
  };
  value("", 0);
  space();
  if (i < text.length) fail("more text after the JSON value");
  return lines;
}

// The line of `pointer`'s value in `text`: where it sits, or, for a pointer to something absent (a
// required property that is missing), the line of its nearest ancestor that is there (`exact` false).
// null when the text is not JSON or the pointer is not a pointer.
export function lineOfPointer(text: string, pointer: string): { line: number; exact: boolean } | null {
  if (pointer !== "" && !pointer.startsWith("/")) return null;
  let lines: Map<string, number>;
  try {
    lines = valueLines(text);
  } catch {
    return null;
  }
  for (let p = pointer; ; p = p.slice(0, p.lastIndexOf("/"))) {
    const line = lines.get(p);
    if (line !== undefined) return { line, exact: p === pointer };
    if (p === "") return null;
  }
}
