// Control BASIC (T3000's program language) as the program editor colours it: each line of the text
// cut into tokens (line number, keyword, function, point, label, number, time, string, comment,
// operator), and the HTML of the highlighted text with the server's errors marked at their line and
// column. Pure functions: no Vue, no I/O; the editor is components/programs/BasicEditor.vue.
//
// The words are cut as T3000's own tokenizer and the server's parser (core/src/basic/lex.rs) cut
// them: a word ends only at white space and at `: ! ; , < > ' * ^ = ( ) [ ] "`, so `+ - / . & | _`
// inside a word are part of it: `WH-SP`, `TIME-ON`, `IF+`, `LN-1` and `1.2.MB_REG7` are one token
// each, and `A-B` is one name (operators between names need spaces, as T3000 prints them). A token
// that starts with an operator character is that operator. The server's parser is what decides;
// colours only help reading, so an unknown word is a label (a point's name on the panel, or a
// local variable), never an error by itself.

export type TokenKind =
  | 'lineno' // the BASIC line number at the start of a line
  | 'lineref' // a line number a GOTO, GOSUB, THEN or ELSE jumps to
  | 'keyword'
  | 'function'
  | 'constant' // day and month names (SUN, JAN ...)
  | 'point' // IN1, OUT3, VAR12, 2-VAR12, 1.2.MB_REG7, 123456AV3 ...
  | 'label' // any other name: a point's label (WH-SP) or a declared local variable
  | 'local' // a one-letter local variable (A..Z)
  | 'number'
  | 'time' // 00:01:00
  | 'string' // "text", and the message of ALARM / DALARM
  | 'comment' // REM ...
  | 'operator'
  | 'punct' // ( ) [ ] , ;
  | 'space'
  | 'other' // a character the language has no use for

export interface Token {
  kind: TokenKind
  text: string
  /** 0-based offset of the token in its line. */
  start: number
}

/** Statement words and the words of expressions (AND, NOT, MOD ...). Hyphenated ones are also
 * written with `_` (ON_ALARM); both are listed through `withUnderscores`. */
const KEYWORDS = withUnderscores([
  'ALARM', 'ALARM-AT', 'AND', 'BYTE', 'CALL', 'CLEAR', 'CLOSE', 'DALARM', 'DECLARE', 'DIM', 'DISABLE',
  'ELSE', 'ENABLE', 'END', 'FLOAT', 'FOR', 'GOSUB', 'GOTO', 'HANGUP', 'IF', 'IF+', 'IF-', 'INTEGER', 'LET',
  'LONG', 'MOD', 'NEXT', 'NOT', 'ON', 'ON-ALARM', 'ON-ERROR', 'OPEN', 'OR', 'PHONE', 'PRINT', 'PRINT-AT',
  'REMOTE-GET', 'REMOTE-SET', 'RETURN', 'RUN-MACRO', 'RUN-SYSTEM', 'SET-PRINTER', 'START', 'STEP', 'STOP',
  'STRING', 'THEN', 'TO', 'WAIT', 'XOR',
])

/** Built-in functions and the values without arguments (TIME, DOW, SCANS ...), and PRINT's items. */
const FUNCTIONS = withUnderscores([
  'ABS', 'ATAN', 'ATN', 'AVG', 'BEEP', 'CLEARPORT', 'COM1', 'CONPROP', 'CONRATE', 'CONRESET', 'COS', 'DATE', 'DOM',
  'DOW', 'DOY', 'EXP', 'INKEYD', 'INPUT', 'INT', 'INTERVAL', 'LN', 'LN-1', 'LOG', 'MAX', 'MB_BLOCKREAD',
  'MB_BLOCKWRITE', 'MB_BWCOIL', 'MIN', 'MOY', 'OUTPUT', 'OUTPUTD', 'PIDPROP', 'PIDRATE', 'PIDRESET',
  'POWER-LOSS', 'PVAR', 'RGB', 'RUNTIME', 'SCANS', 'SCH-OFF', 'SCH-ON', 'SENSOR-OFF', 'SENSOR-ON', 'SIN',
  'SQR', 'SQRT', 'STATUS', 'TAN', 'TBL', 'TIME', 'TIME-OFF', 'TIME-ON', 'TIME_FORMAT', 'UNACK', 'USER-A', 'USER-B',
  'WR-OFF', 'WR-ON',
])

/** Day and month names, short and long. */
const CONSTANTS = new Set([
  'SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT',
  'SUNDAY', 'MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY',
  'JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC',
  'JANUARY', 'FEBRUARY', 'MARCH', 'APRIL', 'JUNE', 'JULY', 'AUGUST', 'SEPTEMBER', 'OCTOBER', 'NOVEMBER', 'DECEMBER',
])

/** The point types a name can start with, longest first so that `MB_REG` wins over `MB_`-less
 * prefixes and `DMON` over `MON`. */
const POINT_TYPES = [
  'MB_INPUT_FLOAT_ABCD', 'MB_INPUT_FLOAT_CDAB', 'MB_INPUT_FLOAT_BADC', 'MB_INPUT_FLOAT_DCBA',
  'MB_REG_FLOAT_ABCD', 'MB_REG_FLOAT_CDAB', 'MB_REG_FLOAT_BADC', 'MB_REG_FLOAT_DCBA',
  'MB_DISINPUT', 'MB_INPUTREG', 'MB_COIL', 'MB_REG',
  'DMON', 'AMON', 'ALRS', 'UNITS', 'PASS', 'WR_T', 'AR_D', 'ALR', 'OUT', 'VAR', 'PID', 'CON', 'SCH', 'HOL', 'PRG', 'TBL', 'GRP', 'REG', 'MSV',
  'IN', 'WR', 'AR', 'AY', 'AV', 'AI', 'AO', 'BO', 'BV', 'BI',
]

/** A point name: an optional panel (`2-`, `2.`, `2`), an optional sub-device (`1.`), the type, the number. */
const POINT = new RegExp(`^(?:\\d+[-.]?)?(?:\\d+[-.])?(?:${POINT_TYPES.join('|')})\\d+$`)

/** The characters that end a word, besides white space (lex.rs `ends_word`). */
const ENDS_WORD = ':!;,<>\'*^=()[]"'
const TIME = /^\d{1,2}:\d{2}(?::\d{2})?/
const NUMBER = /^(?:\d+(?:\.\d*)?|\.\d+)(?:E[+-]?\d+)?$/
/** Operators, longest first (lex.rs `OPS`, without the punctuation). */
const OPERATORS = ['<>', '<=', '>=', '+', '-', '*', '/', '\\', '^', '%', '&', '|', '=', '<', '>', "'", ':', '!']
const PUNCT = '()[],;'

function withUnderscores(words: string[]): Set<string> {
  return new Set(words.flatMap((w) => (w.includes('-') && !w.endsWith('-') ? [w, w.replace(/-/g, '_')] : [w])))
}

/** What a word (a name, upper-cased) is: keyword, function, constant, point, local or label. */
export function wordKind(word: string): TokenKind {
  const w = word.toUpperCase()
  if (KEYWORDS.has(w)) return 'keyword'
  if (FUNCTIONS.has(w)) return 'function'
  if (CONSTANTS.has(w)) return 'constant'
  if (POINT.test(w)) return 'point'
  if (/^[A-Z]$/.test(w)) return 'local'
  return 'label'
}

/** Words after which a bare number is a line to go to. */
const JUMPS = new Set(['GOTO', 'GOSUB', 'THEN', 'ELSE', 'ON-ALARM', 'ON_ALARM', 'ON-ERROR', 'ON_ERROR'])
/** Words after which a list of line numbers follows (`ON x GOTO 10, 20`). */
const LISTS = new Set(['GOTO', 'GOSUB'])

/** The tokens of one line of program text (without its line break). */
export function tokenizeLine(line: string): Token[] {
  const out: Token[] = []
  const push = (kind: TokenKind, start: number, end: number) => out.push({ kind, text: line.slice(start, end), start })
  let i = 0
  // The BASIC line number: the first word of the line when it is all digits.
  const head = /^([\s\uFEFF]*)(\d+)(?=\s|$)/.exec(line)
  if (head) {
    if (head[1]) push('space', 0, head[1].length)
    push('lineno', head[1].length, head[0].length)
    i = head[0].length
  }
  let lastWord = '' // the last keyword, for line references
  let list = false // inside `GOTO 10, 20, 30`
  let alarmCommas = -1 // commas seen after ALARM / DALARM (its message follows the second)
  let depth = 0
  while (i < line.length) {
    const c = line[i]
    const rest = line.slice(i)
    const start = i
    if (isSpace(c)) {
      while (i < line.length && isSpace(line[i])) i++
      push('space', start, i)
      continue
    }
    let kind: TokenKind
    if (c === '"') {
      const close = line.indexOf('"', i + 1)
      i = close < 0 ? line.length : close + 1
      kind = 'string'
    } else if (/^\d+:/.test(rest)) {
      // A time literal: digits, then `:` (the parser says what is wrong with a bad one).
      i += (TIME.exec(rest) ?? /^\d+:/.exec(rest)!)[0].length
      kind = 'time'
    } else if (!PUNCT.includes(c) && !OPERATORS.some((o) => rest.startsWith(o))) {
      while (i < line.length && !isSpace(line[i]) && !ENDS_WORD.includes(line[i])) i++
      const word = line.slice(start, i).toUpperCase()
      if (word === 'REM') {
        push('comment', start, line.length)
        return out
      }
      if (NUMBER.test(word)) {
        kind = JUMPS.has(lastWord) && (list || prevSignificant(out)?.text.toUpperCase() === lastWord) ? 'lineref' : 'number'
      } else if (/^[A-Z0-9_.]/.test(word)) {
        kind = wordKind(word)
      } else {
        kind = 'other'
      }
      if (kind === 'keyword') {
        if (word === 'ALARM' || word === 'DALARM') alarmCommas = 0
        lastWord = word
        list = LISTS.has(word)
        push(kind, start, i)
        continue
      }
    } else if (PUNCT.includes(c)) {
      i++
      kind = 'punct'
      if (c === '(' || c === '[') depth++
      else if (c === ')' || c === ']') depth = Math.max(0, depth - 1)
      else if (c === ',' && depth === 0 && alarmCommas >= 0 && ++alarmCommas === 2) {
        // ALARM a > b , hysteresis , message: the message is the rest of the line, as written.
        push('punct', start, i)
        const text = /^\s*/.exec(line.slice(i))![0].length
        if (text) push('space', i, i + text)
        if (i + text < line.length) push('string', i + text, line.length)
        return out
      }
      if (c === ',' && list) {
        push(kind, start, i)
        continue
      }
    } else {
      const op = OPERATORS.find((o) => rest.startsWith(o))
      if (op) {
        i += op.length
        kind = 'operator'
      } else {
        i++
        kind = 'other'
      }
    }
    list = list && kind === 'lineref'
    push(kind, start, i)
  }
  return out
}

/** White space for the tokenizer: T3000 also skips the backquote (and a BOM starts some files). */
function isSpace(c: string): boolean {
  return /\s/.test(c) || c === '`' || c === '\uFEFF' || c === '\0'
}

/** The last token that is not white space. */
function prevSignificant(tokens: Token[]): Token | undefined {
  for (let k = tokens.length - 1; k >= 0; k--) if (tokens[k].kind !== 'space') return tokens[k]
  return undefined
}

/** The lines of a program text (`\r\n`, `\r` and `\n` all end a line). */
export function splitLines(source: string): string[] {
  return source.split(/\r\n|\r|\n/)
}

/** The tokens of every line of `source`. */
export function tokenize(source: string): Token[][] {
  return splitLines(source).map(tokenizeLine)
}

/** A program text as the editor keeps it: line breaks as `\n`, no byte-order mark. */
export function normalizeSource(source: string): string {
  return source.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n')
}

// ---- errors at their place ------------------------------------------------------------------

/** Something wrong at a place in the text: a syntax error from the server's check or save, or
 * the runtime error that stopped the program. */
export interface Mark {
  /** 1-based line of the text. */
  line: number
  /** 1-based column (in characters); null: the whole line. */
  column: number | null
  message: string
  kind: 'syntax' | 'runtime'
}

/** The BASIC line number a line of text starts with; null when it starts with none. */
export function lineNumberOf(line: string): number | null {
  const head = /^[\s\uFEFF]*(\d+)(?=\s|$)/.exec(line)
  return head ? Number(head[1]) : null
}

/** The 1-based text line that holds BASIC line `number` (the first, if written twice); null when none does. */
export function textLineOf(source: string, number: number): number | null {
  const k = splitLines(source).findIndex((l) => lineNumberOf(l) === number)
  return k < 0 ? null : k + 1
}

/**
 * A program's runtime error as a mark. The BASIC line number (`line_number`) names the line even
 * when the text changed since the error (lines added above it): the mark goes on the text line
 * the server gives (with its column) when that line still holds that number, else on the line
 * that does (without a column). Without a line number (0: before any line) the server's text line
 * is taken as it is. Null when the place is not in `source` any more: the page still says the
 * error, without a place.
 */
export function runtimeMark(
  source: string,
  e: { line_number?: number | null; line?: number | null; column?: number | null; message: string },
): Mark | null {
  const lines = splitLines(source)
  const given = e.line && e.line >= 1 && e.line <= lines.length ? e.line : null
  const column = e.column && e.column >= 1 ? e.column : null
  if (e.line_number) {
    if (given !== null && lineNumberOf(lines[given - 1]) === e.line_number) return { line: given, column, message: e.message, kind: 'runtime' }
    const at = textLineOf(source, e.line_number)
    return at === null ? null : { line: at, column: null, message: e.message, kind: 'runtime' }
  }
  return given === null ? null : { line: given, column, message: e.message, kind: 'runtime' }
}

/** A piece of a highlighted line: a token, maybe cut at an error's column, maybe marked. */
export interface Piece {
  kind: TokenKind
  text: string
  /** The error's column falls in this piece. */
  marked?: 'syntax' | 'runtime'
}

/**
 * The pieces of one line with `mark` applied: the token holding the mark's column is marked (a
 * mark on white space or past the end of the line marks one blank after it, so that it shows).
 */
export function markLine(tokens: Token[], mark: Mark | null | undefined): Piece[] {
  const pieces: Piece[] = tokens.map((t) => ({ kind: t.kind, text: t.text }))
  if (!mark || mark.column === null) return pieces
  const at = mark.column - 1
  const k = tokens.findIndex((t) => at >= t.start && at < t.start + t.text.length)
  if (k >= 0 && tokens[k].kind !== 'space') {
    pieces[k].marked = mark.kind
    return pieces
  }
  if (k >= 0) {
    // On white space: mark the one character there.
    const t = tokens[k]
    const cut = at - t.start
    const parts: Piece[] = []
    if (cut > 0) parts.push({ kind: 'space', text: t.text.slice(0, cut) })
    parts.push({ kind: 'space', text: t.text[cut], marked: mark.kind })
    if (cut + 1 < t.text.length) parts.push({ kind: 'space', text: t.text.slice(cut + 1) })
    pieces.splice(k, 1, ...parts)
    return pieces
  }
  pieces.push({ kind: 'space', text: ' ', marked: mark.kind })
  return pieces
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/**
 * The HTML of the highlighted program: one `<div class="cl">` per line of `source`, a `<span
 * class="t-KIND">` per token, the marked token `class="… err-syntax|err-runtime"`, and after a
 * marked line its message (`<span class="msg">`), where the text ends so the editor's caret and
 * columns stay where the text is. `marks` holds at most one mark per line (the first wins).
 */
export function highlightHtml(source: string, marks: Mark[] = []): string {
  const byLine = new Map<number, Mark>()
  for (const m of marks) if (!byLine.has(m.line)) byLine.set(m.line, m)
  return tokenize(source)
    .map((tokens, k) => {
      const mark = byLine.get(k + 1)
      const body = markLine(tokens, mark)
        .map((p) => {
          const cls = `t-${p.kind}${p.marked ? ` err-${p.marked}` : ''}`
          return p.kind === 'space' && !p.marked ? escapeHtml(p.text) : `<span class="${cls}">${escapeHtml(p.text)}</span>`
        })
        .join('')
      const msg = mark ? `<span class="msg msg-${mark.kind}">${escapeHtml(mark.message)}</span>` : ''
      return `<div class="cl${mark ? ` cl-${mark.kind}` : ''}" data-line="${k + 1}">${body}${msg}</div>`
    })
    .join('')
}
