import { describe, expect, it } from 'vitest'
import { highlightHtml, markLine, normalizeSource, runtimeMark, textLineOf, tokenize, tokenizeLine, wordKind, type TokenKind } from './basic'

/** The tokens of a line without white space, as [kind, text]. */
function toks(line: string): [TokenKind, string][] {
  return tokenizeLine(line)
    .filter((t) => t.kind !== 'space')
    .map((t) => [t.kind, t.text])
}

describe('Control BASIC tokens', () => {
  it('an INTERVAL test jumping to lines (BTUMeter4 as T3000 prints it)', () => {
    expect(toks('20 IF INTERVAL( 00:01:00 ) THEN GOTO 30 ELSE GOTO 60')).toEqual([
      ['lineno', '20'],
      ['keyword', 'IF'],
      ['function', 'INTERVAL'],
      ['punct', '('],
      ['time', '00:01:00'],
      ['punct', ')'],
      ['keyword', 'THEN'],
      ['keyword', 'GOTO'],
      ['lineref', '30'],
      ['keyword', 'ELSE'],
      ['keyword', 'GOTO'],
      ['lineref', '60'],
    ])
  })

  it('hyphenated labels are one word each (the 1998 printout: two spaces after the line number)', () => {
    expect(toks('15  WH-SP = WHN-SP')).toEqual([
      ['lineno', '15'],
      ['label', 'WH-SP'],
      ['operator', '='],
      ['label', 'WHN-SP'],
    ])
    // The spaces are kept as they are, so the highlighted text lines up with the typed text.
    expect(tokenizeLine('15  WH-SP = WHN-SP').map((t) => t.text).join('')).toBe('15  WH-SP = WHN-SP')
    expect(tokenizeLine('15  WH-SP')[1]).toEqual({ kind: 'space', text: '  ', start: 2 })
  })

  it('IF+ with TIME-OFF of a label, a time literal and START of an output', () => {
    expect(toks('40 IF+ TIME-OFF( INT2OCC ) > 00:30:10 THEN START OUT3')).toEqual([
      ['lineno', '40'],
      ['keyword', 'IF+'],
      ['function', 'TIME-OFF'],
      ['punct', '('],
      ['label', 'INT2OCC'],
      ['punct', ')'],
      ['operator', '>'],
      ['time', '00:30:10'],
      ['keyword', 'THEN'],
      ['keyword', 'START'],
      ['point', 'OUT3'],
    ])
  })

  it('points of this panel, of other panels, of sub-devices and BACnet objects', () => {
    for (const p of ['IN1', 'OUT3', 'VAR12', 'PID2', 'CON2', 'SCH1', 'WR2', 'AR1', 'PRG4', 'AMON3', '2-VAR12', '2.VAR12', '1-WR2', '2VAR12', '1.2.MB_REG7', '19.1.REG2', '2.1.MB_REG1', '123456AV3', 'var5']) {
      expect(wordKind(p), p).toBe('point')
      expect(toks(`10 X = ${p}`)[3], p).toEqual(['point', p])
    }
    for (const w of ['INT2OCC', 'WH-SP', 'DAYTIME', 'OUT', 'VARX', 'IN1A', 'HTP.SP']) expect(wordKind(w), w).toBe('label')
    expect(wordKind('A')).toBe('local')
    expect(wordKind('WR-ON')).toBe('function')
    expect(wordKind('ON_ALARM')).toBe('keyword')
    expect(wordKind('SUN')).toBe('constant')
  })

  it('point arrays, numbers, negatives and operators', () => {
    expect(toks('540  SETPADJ = MIN( 3 , MAX(  -3 , AY2[ VAR1 ] ) ) * 1.50 ^ 2 MOD 7 <> 10E+21')).toEqual([
      ['lineno', '540'],
      ['label', 'SETPADJ'],
      ['operator', '='],
      ['function', 'MIN'],
      ['punct', '('],
      ['number', '3'],
      ['punct', ','],
      ['function', 'MAX'],
      ['punct', '('],
      ['operator', '-'],
      ['number', '3'],
      ['punct', ','],
      ['point', 'AY2'],
      ['punct', '['],
      ['point', 'VAR1'],
      ['punct', ']'],
      ['punct', ')'],
      ['punct', ')'],
      ['operator', '*'],
      ['number', '1.50'],
      ['operator', '^'],
      ['number', '2'],
      ['keyword', 'MOD'],
      ['number', '7'],
      ['operator', '<>'],
      ['number', '10E+21'],
    ])
  })

  it('REM makes the rest of the line a comment, keywords in it included', () => {
    expect(toks('90 REM IF TIME > 09:00:00 THEN STOP GAS')).toEqual([
      ['lineno', '90'],
      ['comment', 'REM IF TIME > 09:00:00 THEN STOP GAS'],
    ])
  })

  it('a word goes on through - + / . & | _ as in T3000 (operators between names need spaces)', () => {
    expect(toks('10 VAR3 = VAR1-VAR2 + A/B - 2')).toEqual([
      ['lineno', '10'],
      ['point', 'VAR3'],
      ['operator', '='],
      ['label', 'VAR1-VAR2'],
      ['operator', '+'],
      ['label', 'A/B'],
      ['operator', '-'],
      ['number', '2'],
    ])
    expect(toks('10 X = .5 * 2E3')).toEqual([
      ['lineno', '10'],
      ['local', 'X'],
      ['operator', '='],
      ['number', '.5'],
      ['operator', '*'],
      ['number', '2E3'],
    ])
  })

  it('strings, and the unquoted message of ALARM and DALARM', () => {
    expect(toks('10 PRINT "HELLO, WORLD" ; TIME')).toEqual([
      ['lineno', '10'],
      ['keyword', 'PRINT'],
      ['string', '"HELLO, WORLD"'],
      ['punct', ';'],
      ['function', 'TIME'],
    ])
    expect(toks('20 ALARM IN1 > 30 , MAX( 1 , 2 ) , ROOM TOO HOT, CHECK AHU')).toEqual([
      ['lineno', '20'],
      ['keyword', 'ALARM'],
      ['point', 'IN1'],
      ['operator', '>'],
      ['number', '30'],
      ['punct', ','],
      ['function', 'MAX'],
      ['punct', '('],
      ['number', '1'],
      ['punct', ','],
      ['number', '2'],
      ['punct', ')'],
      ['punct', ','],
      ['string', 'ROOM TOO HOT, CHECK AHU'],
    ])
    expect(toks('30 DALARM IN2 , 60 , FILTER DIRTY').slice(-1)).toEqual([['string', 'FILTER DIRTY']])
    // An unterminated string ends with the line.
    expect(toks('10 PRINT "OPEN')).toEqual([
      ['lineno', '10'],
      ['keyword', 'PRINT'],
      ['string', '"OPEN'],
    ])
  })

  it('line numbers after THEN, ELSE and in ON ... GOTO lists; other numbers stay numbers', () => {
    expect(toks('10 ON VAR1 GOSUB 100 , 200 , 300')).toEqual([
      ['lineno', '10'],
      ['keyword', 'ON'],
      ['point', 'VAR1'],
      ['keyword', 'GOSUB'],
      ['lineref', '100'],
      ['punct', ','],
      ['lineref', '200'],
      ['punct', ','],
      ['lineref', '300'],
    ])
    expect(toks('10 IF IN1 THEN 40 ELSE 50')).toEqual([
      ['lineno', '10'],
      ['keyword', 'IF'],
      ['point', 'IN1'],
      ['keyword', 'THEN'],
      ['lineref', '40'],
      ['keyword', 'ELSE'],
      ['lineref', '50'],
    ])
    expect(toks('10 IF IN1 THEN VAR1 = 40')[6]).toEqual(['number', '40'])
    expect(toks('10 FOR I = 1 TO 10 STEP 2').map((t) => t[0])).toEqual(['lineno', 'keyword', 'local', 'operator', 'number', 'keyword', 'number', 'keyword', 'number'])
  })

  it('labels that start with digits, lower case, unknown characters, a BOM', () => {
    expect(toks('10 START 12VOLT')).toEqual([
      ['lineno', '10'],
      ['keyword', 'START'],
      ['label', '12VOLT'],
    ])
    expect(toks('10 if in1 then start out1').map((t) => t[0])).toEqual(['lineno', 'keyword', 'point', 'keyword', 'keyword', 'point'])
    expect(toks('10 VAR1 = @')[3]).toEqual(['other', '@'])
    expect(toks('\uFEFF10 END')).toEqual([
      ['lineno', '10'],
      ['keyword', 'END'],
    ])
  })

  it('tokens cover every character of every line', () => {
    const src = '10 REM x\r\n20  A = B+1 - "q" , `/* c */\n\n30 END '
    expect(tokenize(src).map((l) => l.map((t) => t.text).join(''))).toEqual(['10 REM x', '20  A = B+1 - "q" , `/* c */', '', '30 END '])
    expect(normalizeSource('\uFEFF10 END\r\n20 END\r')).toBe('10 END\n20 END\n')
  })
})

describe('errors at their place', () => {
  const src = '10 VAR1 = 1\n20 IF VAR1 > 2 ELSE GOTO 10\n30 VAR2 = VAR1 / 0\n'

  it('marks the token at the column, white space and the end of the line included', () => {
    const line = tokenizeLine('20 IF VAR1 > 2 ELSE GOTO 10')
    const at = (column: number) => markLine(line, { line: 2, column, message: 'm', kind: 'syntax' }).filter((p) => p.marked)
    expect(at(16)).toEqual([{ kind: 'keyword', text: 'ELSE', marked: 'syntax' }])
    expect(at(18)).toEqual([{ kind: 'keyword', text: 'ELSE', marked: 'syntax' }])
    expect(at(15)).toEqual([{ kind: 'space', text: ' ', marked: 'syntax' }])
    expect(at(40)).toEqual([{ kind: 'space', text: ' ', marked: 'syntax' }])
    // Cutting white space keeps every character.
    expect(markLine(tokenizeLine('10  X'), { line: 1, column: 3, message: '', kind: 'syntax' }).map((p) => p.text).join('')).toBe('10  X')
    // A mark without a column marks no token (the line is marked as a whole).
    expect(markLine(line, { line: 2, column: null, message: 'm', kind: 'runtime' }).some((p) => p.marked)).toBe(false)
  })

  it('puts the message at the end of its line in the HTML, escaped', () => {
    const html = highlightHtml(src, [{ line: 2, column: 16, message: 'expected THEN after the condition, found ELSE <here>', kind: 'syntax' }])
    const lines = html.match(/<div class="cl[^"]*" data-line="\d+">.*?<\/div>/g)!
    expect(lines).toHaveLength(4)
    expect(lines[0]).not.toContain('msg')
    expect(lines[1]).toContain('class="cl cl-syntax" data-line="2"')
    expect(lines[1]).toContain('<span class="t-keyword err-syntax">ELSE</span>')
    expect(lines[1]).toMatch(/<span class="msg msg-syntax">expected THEN after the condition, found ELSE &lt;here&gt;<\/span><\/div>$/)
    // The text (tags taken out) is the source, line by line, then the message.
    const text = (l: string) => l.replace(/<span class="msg[^>]*>.*?<\/span>/, '').replace(/<[^>]+>/g, '').replace(/&gt;/g, '>').replace(/&lt;/g, '<').replace(/&amp;/g, '&')
    expect(lines.map(text)).toEqual(src.split('\n'))
  })

  it('finds a runtime error by its BASIC line number, even after the text moved', () => {
    const err = { line_number: 30, line: 3, column: 16, message: 'division by zero' }
    expect(runtimeMark(src, err)).toEqual({ line: 3, column: 16, message: 'division by zero', kind: 'runtime' })
    // Two lines added above: line 30 is now the 5th line of the text; the column is no longer known.
    expect(runtimeMark(`1 REM a\n2 REM b\n${src}`, err)).toEqual({ line: 5, column: null, message: 'division by zero', kind: 'runtime' })
    // Line 30 deleted: nowhere to show it.
    expect(runtimeMark('10 VAR1 = 1\n', err)).toBeNull()
    // Before any line (0): the server's text line as it is.
    expect(runtimeMark(src, { line_number: 0, line: 1, column: 1, message: 'unknown point VAR9' })).toEqual({ line: 1, column: 1, message: 'unknown point VAR9', kind: 'runtime' })
    expect(textLineOf(src, 20)).toBe(2)
    expect(textLineOf(src, 25)).toBeNull()
  })
})
