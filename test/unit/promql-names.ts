// Metric names a PromQL expression reads, for checking dashboards and alerting rules against the
// metrics sluice registers. A small scanner, not a PromQL parser: it drops strings, label
// matchers, ranges and grouping clauses, then keeps the identifiers that are not functions,
// aggregations or keywords. `{__name__=~"a|b"}` selectors yield their alternatives (plain names
// only; anything else throws, so a pattern cannot hide a name from the check).

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'inf',
  'nan',
]);

/** The metric names `expr` selects. Grafana variables ($var, ${var}) are ignored. */
export function metricNames(expr: string): string[] {
  const names = new Set<string>();
  for (const m of expr.matchAll(/__name__\s*=~?\s*"([^"]*)"/g)) {
    for (const alt of m[1]!.split('|')) {
      if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(alt))
        throw new Error(`__name__ pattern "${m[1]}" is not a list`);
      names.add(alt);
    }
  }
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const before = bare[m.index - 1];
    if (before && /[0-9.]/.test(before)) continue; // 1e3, 5m
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    const after = bare.slice(m.index + m[0].length).trimStart();
    if (after.startsWith('(')) continue; // a function or an aggregation
    names.add(m[0]);
  }
  return [...names];
}

/** The selector of a Grafana `label_values(selector, label)` query, or the query itself. */
export function grafanaQueryExpr(query: string): string {
  const m = /^\s*label_values\(\s*(.*),\s*\w+\s*\)\s*$/s.exec(query);
  return m ? m[1]! : query;
}
