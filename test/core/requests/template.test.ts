import { describe, expect, it } from 'vitest';
import { compileTemplate, placeholder } from '../../../src/core/requests/template.js';

describe('compileTemplate', () => {
  it('fills {{column}} placeholders, with spaces around names allowed', () => {
    const t = compileTemplate('Review: {{ review }} ({{rating}}/5) {{review}}');
    expect(t.columns).toEqual(['review', 'rating']);
    expect(t.render({ review: 'good', rating: '5' })).toBe('Review: good (5/5) good');
  });

  it('reads names with spaces, and dotted paths into nested JSON when no such column exists', () => {
    const t = compileTemplate('{{review text}} by {{user.name}} / {{a.b}}');
    expect(t.render({ 'review text': 'ok', user: { name: 'Ann' }, 'a.b': 'flat wins' })).toBe(
      'ok by Ann / flat wins',
    );
  });

  it('renders null as empty, numbers as text, objects as JSON', () => {
    const t = compileTemplate('{{a}}|{{b}}|{{c}}|{{d}}');
    expect(t.render({ a: null, b: 3.5, c: { x: [1] }, d: true })).toBe('|3.5|{"x":[1]}|true');
  });

  it('names the first missing column', () => {
    const t = compileTemplate('{{a}} {{b}}');
    expect(t.missing({ a: '' })).toBe('b');
    expect(() => t.render({ a: '' })).toThrow(
      expect.objectContaining({ code: 'BP_TEMPLATE_MISSING_COLUMN', context: { column: 'b' } }),
    );
  });

  it('refuses broken placeholders at compile time', () => {
    expect(() => compileTemplate('Hello {{name')).toThrow(
      expect.objectContaining({ code: 'BP_TEMPLATE_SYNTAX' }),
    );
    expect(() => compileTemplate('Hello {{}}')).toThrow(
      expect.objectContaining({ code: 'BP_TEMPLATE_SYNTAX' }),
    );
  });

  it('leaves a template without placeholders as it is', () => {
    expect(compileTemplate('plain } text {').render({})).toBe('plain } text {');
  });

  it('names any column as a JSON string: {{"name"}} (quotes, braces, edge spaces, escapes)', () => {
    const t = compileTemplate(
      '{{ "say \\"hi\\"" }}|{{" padded "}}|{{"a}}b{"}}|{{"tab\\there"}}|{{"a.b"}}|{{col name}}',
    );
    expect(t.columns).toEqual(['say "hi"', ' padded ', 'a}}b{', 'tab\there', 'a.b', 'col name']);
    const row = {
      'say "hi"': '1',
      ' padded ': '2',
      'a}}b{': '3',
      'tab\there': '4',
      'a.b': '5',
      'col name': '6',
    };
    expect(t.render(row)).toBe('1|2|3|4|5|6');
    expect(() => compileTemplate('{{"bad \\x"}}')).toThrow(
      expect.objectContaining({ code: 'BP_TEMPLATE_SYNTAX' }),
    );
    // Messages write a name back in the form that reads it.
    expect(placeholder('review')).toBe('{{review}}');
    expect(placeholder(' padded ')).toBe('{{" padded "}}');
    expect(placeholder('a}b')).toBe('{{"a}b"}}');
    expect(() => compileTemplate('{{" padded "}}').render({ padded: 'x' })).toThrow(
      'the template uses {{" padded "}} but the row has no column " padded "',
    );
  });

  it("reads columns named like Object.prototype members as the row's own values only", () => {
    const t = compileTemplate('{{__proto__}}|{{constructor}}|{{toString}}');
    const row: Record<string, unknown> = {};
    Object.defineProperty(row, '__proto__', {
      value: 'p',
      enumerable: true,
      writable: true,
      configurable: true,
    });
    Object.assign(row, { constructor: 'c', toString: 't' });
    expect(t.render(row)).toBe('p|c|t');
    expect(t.missing({ constructor: 'c' })).toBe('__proto__');
    expect(() => compileTemplate('{{toString}}').render({})).toThrow(
      expect.objectContaining({ code: 'BP_TEMPLATE_MISSING_COLUMN', context: { column: 'toString' } }),
    );
    expect(compileTemplate('{{a.constructor}}').missing({ a: {} })).toBe('a.constructor');
  });
});
