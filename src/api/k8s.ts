// The few Kubernetes core types the sluice API refers to. Selectors are modelled exactly; pod-spec
// pieces (affinity, tolerations, volumes, security contexts, resources) are kept as written and
// validated by Kubernetes itself when the controller puts them into a Deployment.
import { z } from 'zod';
import { bool, obj, opaque, str } from './kit.ts';

export const SecretKeySelector = obj('Points at one key of a Secret in the same namespace.', {
  name: str('Name of the Secret.'),
  key: z.string().min(1).describe('Key inside the Secret whose value is used.'),
  optional: bool('When true, a missing Secret or key is not an error.'),
});
export type SecretKeySelector = z.infer<typeof SecretKeySelector>;

export const ConfigMapKeySelector = obj('Points at one key of a ConfigMap in the same namespace.', {
  name: str('Name of the ConfigMap.'),
  key: z.string().min(1).describe('Key inside the ConfigMap whose value is used.'),
  optional: bool('When true, a missing ConfigMap or key is not an error.'),
});
export type ConfigMapKeySelector = z.infer<typeof ConfigMapKeySelector>;

export const LocalObjectReference = obj('Names an object in the same namespace.', {
  name: str('Name of the object.'),
});

/** Optional Secret key selector field. */
export const secretRef = (description: string) => SecretKeySelector.optional().describe(description);
/** Optional ConfigMap key selector field. */
export const configMapRef = (description: string) => ConfigMapKeySelector.optional().describe(description);

// Pod-spec pieces: passed through to Kubernetes unchanged.
export const affinity = () => opaque('Pod affinity and anti-affinity rules, as in a Pod spec.');
export const tolerations = () =>
  z
    .array(
      z
        .record(z.string(), z.unknown())
        .meta({ 'x-kubernetes-preserve-unknown-fields': true, type: 'object' }),
    )
    .optional()
    .describe('Taints the pods tolerate, as in a Pod spec.');
export const volumes = () =>
  z
    .array(
      z
        .record(z.string(), z.unknown())
        .meta({ 'x-kubernetes-preserve-unknown-fields': true, type: 'object' }),
    )
    .optional()
    .describe('Extra volumes for the pods, as in a Pod spec.');
export const podSecurityContext = () => opaque('Pod-level security settings, as in a Pod spec.');
export const securityContext = () => opaque('Container-level security settings, as in a container spec.');
export const resources = () => opaque('CPU and memory requests and limits, as in a container spec.');
export const imagePullSecrets = () =>
  z.array(LocalObjectReference).optional().describe('Secrets used to pull the container image.');
export const nodeSelector = () =>
  z.record(z.string(), z.string()).optional().describe('Node labels the pods must run on.');
export const env = () =>
  z
    .array(
      z
        .record(z.string(), z.unknown())
        .meta({ 'x-kubernetes-preserve-unknown-fields': true, type: 'object' }),
    )
    .optional()
    .describe('Extra environment variables, as in a container spec.');
export const envFrom = () =>
  z
    .array(
      z
        .record(z.string(), z.unknown())
        .meta({ 'x-kubernetes-preserve-unknown-fields': true, type: 'object' }),
    )
    .optional()
    .describe('Sources of environment variables (ConfigMaps, Secrets), as in a container spec.');
export const volumeMounts = () =>
  z
    .array(
      z
        .record(z.string(), z.unknown())
        .meta({ 'x-kubernetes-preserve-unknown-fields': true, type: 'object' }),
    )
    .optional()
    .describe('Where volumes are mounted in the container, as in a container spec.');
export const servicePorts = () =>
  z
    .array(
      z
        .record(z.string(), z.unknown())
        .meta({ 'x-kubernetes-preserve-unknown-fields': true, type: 'object' }),
    )
    .optional()
    .describe('Ports the Service exposes, as in a Service spec.');

const QUANTITY = /^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[KMGTPE]i|[mkMGTPE])?$/;

/** Resource quantity such as "10Gi" or "500m". */
export const quantity = (description: string) =>
  z
    .union([
      z.string().regex(QUANTITY, { message: 'must be a quantity such as "10Gi" or "500m"' }),
      z.number(),
    ])
    .meta({
      'x-kubernetes-int-or-string': true,
      maxLength: 64,
      'x-kubernetes-validations': [
        {
          rule: `type(self) == int || self.matches('${QUANTITY.source.replaceAll('\\', '\\\\')}')`,
          message: 'must be a quantity such as "10Gi" or "500m"',
        },
      ],
    })
    .optional()
    .describe(description);
