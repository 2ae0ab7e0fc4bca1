// CRDs generated from the zod schemas (`make crds` writes crds/*.yaml; a test fails when they
// are stale). zod's JSON Schema output is turned into a Kubernetes *structural* schema: every
// node typed, no unions (int-or-string excepted), no `additionalProperties: false` (the API
// server prunes and, with strict field validation, rejects unknown fields instead), no defaults
// (sluice applies defaults itself, so stored objects stay as the user wrote them).
import { z } from 'zod';

export type JsonSchema = { [key: string]: unknown };

const SAFE = Number.MAX_SAFE_INTEGER;

/** Converts a zod schema to a structural OpenAPI v3 schema for a CRD. Throws naming the path. */
export function toStructural(schema: z.ZodType): JsonSchema {
  const raw = z.toJSONSchema(schema, {
    io: 'input',
    target: 'openapi-3.0',
    unrepresentable: 'any',
    reused: 'inline',
    cycles: 'throw',
  }) as JsonSchema;
  delete raw.$schema;
  return clean(raw, '');
}

function clean(node: JsonSchema, path: string): JsonSchema {
  const out: JsonSchema = { ...node };
  delete out.default;
  delete out.propertyNames;
  delete out.$schema;
  delete out.id;
  if (out.additionalProperties === false) delete out.additionalProperties;
  if (out.minimum === -SAFE) delete out.minimum;
  if (out.maximum === SAFE) delete out.maximum;
  if ('const' in out) {
    out.enum = [out.const];
    delete out.const;
  }

  if (out['x-kubernetes-int-or-string']) {
    // Kubernetes accepts int-or-string only in this bare form; string checks live in CEL rules.
    for (const k of ['anyOf', 'oneOf', 'type', 'pattern', 'minimum', 'maximum', 'minLength']) {
      delete out[k];
    }
    return out;
  }
  if (out.anyOf || out.oneOf || out.allOf) {
    throw new Error(`${path || '<root>'}: unions cannot be expressed in a structural CRD schema`);
  }
  if (
    out.properties &&
    out.additionalProperties &&
    typeof out.additionalProperties === 'object' &&
    Object.keys(out.additionalProperties as object).length === 0
  ) {
    // A loose object (known fields plus anything else): keep the known ones typed.
    delete out.additionalProperties;
    out['x-kubernetes-preserve-unknown-fields'] = true;
  } else if (out['x-kubernetes-preserve-unknown-fields']) {
    delete out.additionalProperties;
    delete out.properties;
    delete out.items;
    return out;
  }
  if (out.type === undefined) {
    // No type (z.unknown()): keep whatever the user wrote.
    out['x-kubernetes-preserve-unknown-fields'] = true;
    return out;
  }
  if (out.properties) {
    const props: Record<string, JsonSchema> = {};
    for (const [k, v] of Object.entries(out.properties as Record<string, JsonSchema>)) {
      props[k] = clean(v, `${path}.${k}`);
    }
    out.properties = props;
    if (Array.isArray(out.required) && out.required.length === 0) delete out.required;
  }
  if (out.additionalProperties && typeof out.additionalProperties === 'object') {
    out.additionalProperties = clean(out.additionalProperties as JsonSchema, `${path}.*`);
  }
  if (out.items) out.items = clean(out.items as JsonSchema, `${path}[]`);
  return out;
}

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'date' | 'boolean' | 'number';
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface CrdDefinition {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  columns: PrinterColumn[];
}

export const GROUP = 'argoproj.io';
export const VERSION = 'v1alpha1';
export const CATEGORIES = ['argo-events', 'sluice'];

const readyColumns: PrinterColumn[] = [
  {
    name: 'Ready',
    type: 'string',
    jsonPath: '.status.conditions[?(@.type=="Ready")].status',
    description: 'Whether the object is ready',
  },
  {
    name: 'Reason',
    type: 'string',
    jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
    description: 'Why it is, or is not, ready',
  },
];

export function buildCrd(def: CrdDefinition): JsonSchema {
  const spec = toStructural(def.spec);
  const status = toStructural(def.status);
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${def.plural}.${GROUP}`,
      labels: { 'app.kubernetes.io/part-of': 'sluice' },
    },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: def.shortNames,
        categories: CATEGORIES,
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            ...readyColumns,
            ...def.columns,
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: def.description,
              properties: {
                apiVersion: {
                  type: 'string',
                  description: 'API version of this object: argoproj.io/v1alpha1.',
                },
                kind: { type: 'string', description: `Kind of this object: ${def.kind}.` },
                // The API server owns metadata's schema and rejects anything else here.
                metadata: { type: 'object' },
                spec,
                status,
              },
              required: ['spec'],
            },
          },
        },
      ],
    },
  };
}
