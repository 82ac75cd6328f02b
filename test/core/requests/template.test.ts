import { describe, expect, it } from 'vitest';
import { compileTemplate } from '../../../src/core/requests/template.js';

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
});
