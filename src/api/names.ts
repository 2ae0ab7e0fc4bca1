// Object names and namespaces as the Kubernetes API server checks them, plus the limit the
// objects sluice derives from a name put on it: `sluice lint` and `sluice dev` refuse what
// `kubectl apply` or the controller would fail on later.

/** RFC 1123 subdomain (k8s.io/apimachinery IsDNS1123Subdomain): what a custom resource may be named. */
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** RFC 1123 label (IsDNS1123Label): what a namespace may be named. */
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** Longest label value: the pods and Services sluice creates carry the owner's name in a label. */
export const MAX_NAME = 63;

/**
 * undefined when `name` can name an EventBus, EventSource or Sensor; otherwise why not. The API
 * server takes any RFC 1123 subdomain up to 253 characters; sluice (like upstream) puts the name
 * in label values, which hold at most 63, so longer names are refused here.
 */
export function checkObjectName(name: string): string | undefined {
  if (!DNS1123_SUBDOMAIN.test(name))
    return `${JSON.stringify(name)} is not a valid name: lowercase letters, digits, "-" and ".", starting and ending with a letter or digit (RFC 1123), as the API server requires`;
  if (name.length > MAX_NAME)
    return `${name.length} characters is too long: at most ${MAX_NAME}, because the name goes into a label of the pods and Services made for it (label values hold at most ${MAX_NAME})`;
  return undefined;
}

/** undefined when `ns` is a valid namespace name (RFC 1123 label, at most 63 characters). */
export function checkNamespace(ns: string): string | undefined {
  if (!DNS1123_LABEL.test(ns) || ns.length > MAX_NAME)
    return `${JSON.stringify(ns)} is not a valid namespace: at most ${MAX_NAME} lowercase letters, digits and "-", starting and ending with a letter or digit (RFC 1123 label)`;
  return undefined;
}
