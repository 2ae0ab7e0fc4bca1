// Removes resolved secret values from text before it is logged, counted or stored (trigger errors
// often echo what was sent: "401 invalid credentials: Basic dXNlcjpwYXNz"). Every value read from
// a Secret is registered here as it is resolved; redact() replaces each occurrence of the value,
// its base64 form, its URL-encoded and JSON-escaped forms and the base64 of every "a:b" pair of registered values
// (HTTP basic auth), and a secret cut off at the end of a truncated body.

/** Values shorter than this are not redacted: they would match all over ordinary text. */
export const MIN_SECRET_LENGTH = 4;
export const REDACTED = '[redacted]';
const MAX_VALUES = 64;

export class Redactor {
  private readonly values = new Set<string>();
  private forms: string[] = [];

  /** Registers a resolved secret value (and its trimmed form: triggers trim what they send). */
  add(value: string): void {
    const before = this.values.size;
    for (const v of [value, value.trim()])
      if (v.length >= MIN_SECRET_LENGTH && this.values.size < MAX_VALUES) this.values.add(v);
    if (this.values.size === before) return;
    const forms = new Set<string>();
    for (const v of this.values) {
      forms.add(v);
      forms.add(Buffer.from(v).toString('base64'));
      forms.add(Buffer.from(v).toString('base64url'));
      forms.add(encodeURIComponent(v));
      forms.add(JSON.stringify(v).slice(1, -1)); // as it appears inside a JSON string
      for (const w of this.values) forms.add(Buffer.from(`${v}:${w}`).toString('base64'));
    }
    // Longest first, so a form containing another is replaced whole.
    this.forms = [...forms].filter((f) => f.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
  }

  /** `text` with every registered secret form replaced by "[redacted]". */
  redact(text: string): string {
    if (!this.forms.length || !text) return text;
    let out = text;
    for (const f of this.forms) if (out.includes(f)) out = out.replaceAll(f, REDACTED);
    return this.cutTail(out);
  }

  /** A text cut off mid-secret (a bounded body) ends with the secret's first characters: mask them. */
  private cutTail(text: string): string {
    let cut = 0;
    for (const f of this.forms) {
      for (let n = Math.min(f.length - 1, text.length); n >= MIN_SECRET_LENGTH; n--) {
        if (n > cut && text.endsWith(f.slice(0, n))) {
          cut = n;
          break;
        }
      }
    }
    return cut ? `${text.slice(0, text.length - cut)}${REDACTED}` : text;
  }
}
