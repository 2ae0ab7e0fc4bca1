// Event sources that receive HTTP requests: the plain webhook, and the services that call one
// (GitHub, GitLab, Bitbucket Cloud and Server, Gerrit, Slack, Stripe, StorageGRID, AWS SNS).
// Several of them can also register the hook with the provider, which needs credentials and the
// public `webhook.url`.
import { z } from 'zod';
import { BasicAuth, GithubAppCreds, WebhookContext } from '../common.ts';
import { SecretKeySelector, secretRef } from '../k8s.ts';
import { bool, count, int, nullTolerant, obj, positiveDuration, str, strList } from '../kit.ts';
import { celHas, celNonEmpty, crossRules, filter, isSet, metadata, tls, webhookField } from './parts.ts';

const deleteHookOnFinish = () =>
  bool('Remove the hook from the provider again when this event source is deleted or stops.');

// ----------------------------------------------------------------------------------- webhook --

export const WebhookEventSource = WebhookContext.extend(
  nullTolerant({
    filter: filter(),
  }),
).describe('A plain HTTP endpoint: every accepted request becomes one event.');
export type WebhookEventSource = z.infer<typeof WebhookEventSource>;

// ------------------------------------------------------------------------------------ GitHub --

export const OwnedRepositories = obj('Repositories of one GitHub user or organisation.', {
  owner: z.string().min(1).describe('User or organisation that owns the repositories.'),
  names: z.array(z.string().min(1)).min(1).describe('Names of the repositories.'),
});

const githubRepos = (v: Record<string, unknown>) =>
  isSet(v, 'repositories') || (isSet(v, 'owner') && isSet(v, 'repository'));
const celGithubRepos = `(${celNonEmpty('repositories')} || (${celHas('owner')} && ${celHas('repository')}))`;

export const GithubEventSource = crossRules(
  obj('Receives GitHub webhook deliveries, and can register the hook on repositories or organisations.', {
    id: int('Obsolete hook id; ignored, as upstream ignores it.'),
    webhook: webhookField('GitHub'),
    owner: str('Older single-repository form: the owner. Prefer repositories.'),
    repository: str('Older single-repository form: the repository name. Prefer repositories.'),
    events: z
      .array(z.string().min(1))
      .optional()
      .describe(
        'GitHub event names the hook is registered for, e.g. ["push", "pull_request"], or ["*"] for all.',
      ),
    apiToken: secretRef('Secret key holding a GitHub token with rights to manage hooks.'),
    webhookSecret: secretRef(
      'Secret key holding the shared secret GitHub signs deliveries with; unsigned or wrongly signed requests are refused.',
    ),
    insecure: bool('Register the hook with TLS certificate checks switched off on the GitHub side.'),
    active: bool('Register the hook as active, so GitHub sends deliveries.'),
    contentType: z
      .enum(['json', 'form'])
      .optional()
      .describe('Payload encoding requested from GitHub: "json" or "form".'),
    githubBaseURL: str('API base URL of a GitHub Enterprise server; set together with githubUploadURL.'),
    githubUploadURL: str('Upload URL of a GitHub Enterprise server; set together with githubBaseURL.'),
    deleteHookOnFinish: deleteHookOnFinish(),
    metadata: metadata(),
    repositories: z
      .array(OwnedRepositories)
      .optional()
      .describe('Repositories to register the hook on, grouped by owner. Use this or organizations.'),
    organizations: strList(
      'Organisations to register an organisation-wide hook on. Use this or repositories.',
    ),
    githubApp: GithubAppCreds.optional().describe('Manage hooks as a GitHub App instead of with apiToken.'),
    filter: filter(),
  }),
  [
    {
      cel: `${celGithubRepos} || ${celNonEmpty('organizations')}`,
      holds: (v) => githubRepos(v) || isSet(v, 'organizations'),
      message: 'list repositories (or the older owner + repository) or organizations',
      field: 'repositories',
      reason: 'FieldValueRequired',
    },
    {
      cel: `!(${celGithubRepos} && ${celNonEmpty('organizations')})`,
      holds: (v) => !(githubRepos(v) && isSet(v, 'organizations')),
      message: 'set repositories or organizations, not both',
      field: 'organizations',
    },
    {
      cel: `${celHas('githubBaseURL')} == ${celHas('githubUploadURL')}`,
      holds: (v) => (v.githubBaseURL !== undefined) === (v.githubUploadURL !== undefined),
      message: 'githubBaseURL and githubUploadURL go together: set both or neither',
      field: 'githubUploadURL',
    },
  ],
);
export type GithubEventSource = z.infer<typeof GithubEventSource>;

// ------------------------------------------------------------------------------------ GitLab --

export const GitlabEventSource = obj('Receives GitLab webhook deliveries, and can register the hook.', {
  webhook: webhookField('GitLab'),
  projectID: str('Older single-project form: id of the project. Prefer projects.'),
  events: z
    .array(z.string().min(1))
    .describe('GitLab hook event kinds to register for, e.g. ["PushEvents", "MergeRequestsEvents"].'),
  accessToken: SecretKeySelector.describe('Secret key holding a GitLab token with rights to manage hooks.'),
  enableSSLVerification: bool('Ask GitLab to verify the TLS certificate of this endpoint when delivering.'),
  gitlabBaseURL: z.string().min(1).describe('Base URL of the GitLab instance, e.g. "https://gitlab.com".'),
  deleteHookOnFinish: deleteHookOnFinish(),
  metadata: metadata(),
  projects: strList('Projects (ids or paths like "group/name") to register the hook on.'),
  secretToken: secretRef(
    'Secret key holding the token GitLab sends with each delivery; requests without it are refused.',
  ),
  filter: filter(),
  groups: strList('Groups (ids or paths) to register a group hook on (a paid GitLab feature).'),
});
export type GitlabEventSource = z.infer<typeof GitlabEventSource>;

// --------------------------------------------------------------------------------- Bitbucket --

export const BitbucketBasicAuth = obj('Bitbucket user name and app password.', {
  username: SecretKeySelector.describe('Secret key holding the user name.'),
  password: SecretKeySelector.describe('Secret key holding the app password.'),
});

export const BitbucketAuth = obj('How sluice authenticates to Bitbucket to manage hooks.', {
  basic: BitbucketBasicAuth.optional().describe('User name and app password.'),
  oauthToken: secretRef('Secret key holding an OAuth bearer token.'),
});

export const BitbucketRepository = obj('One Bitbucket Cloud repository.', {
  owner: z.string().min(1).describe('Workspace or user that owns the repository.'),
  repositorySlug: z.string().min(1).describe('URL-safe name of the repository.'),
});

export const BitbucketEventSource = crossRules(
  obj('Receives Bitbucket Cloud webhook deliveries, and can register the hook.', {
    deleteHookOnFinish: deleteHookOnFinish(),
    metadata: metadata(),
    webhook: webhookField('Bitbucket'),
    auth: BitbucketAuth.optional().describe('Credentials used to register the hook.'),
    events: strList('Bitbucket event keys to register for, e.g. ["repo:push"].'),
    owner: str('Older single-repository form: the owner. Prefer repositories.'),
    projectKey: str('Older single-repository form: the project key. Prefer repositories.'),
    repositorySlug: str('Older single-repository form: the repository slug. Prefer repositories.'),
    repositories: z.array(BitbucketRepository).optional().describe('Repositories to register the hook on.'),
    filter: filter(),
  }),
  [
    {
      cel: `${celNonEmpty('repositories')} || (${celHas('owner')} && ${celHas('repositorySlug')})`,
      holds: (v) => isSet(v, 'repositories') || (isSet(v, 'owner') && isSet(v, 'repositorySlug')),
      message: 'list at least one repository (or the older owner + repositorySlug)',
      field: 'repositories',
      reason: 'FieldValueRequired',
    },
  ],
);
export type BitbucketEventSource = z.infer<typeof BitbucketEventSource>;

export const BitbucketServerRepository = obj('One Bitbucket Server repository.', {
  projectKey: z.string().min(1).describe('Key of the project the repository belongs to.'),
  repositorySlug: z.string().min(1).describe('URL-safe name of the repository.'),
});

export const BitbucketServerEventSource = crossRules(
  obj('Receives Bitbucket Server (Data Center) webhook deliveries, and can register the hook.', {
    webhook: webhookField('Bitbucket Server'),
    projectKey: str('Older single-repository form: the project key. Prefer repositories.'),
    repositorySlug: str('Older single-repository form: the repository slug. Prefer repositories.'),
    projects: strList('Project keys whose repositories all get the hook.'),
    repositories: z
      .array(BitbucketServerRepository)
      .optional()
      .describe('Repositories to register the hook on.'),
    events: strList('Bitbucket Server event keys to register for, e.g. ["repo:refs_changed"].'),
    skipBranchRefsChangedOnOpenPR: bool(
      'Drop repo:refs_changed events for branches that have an open pull request (the PR events cover them).',
    ),
    oneEventPerChange: bool('Split a repo:refs_changed delivery into one event per changed ref.'),
    accessToken: secretRef('Secret key holding a token with rights to manage hooks.'),
    webhookSecret: secretRef(
      'Secret key holding the shared secret deliveries are signed with (HMAC); unsigned requests are refused.',
    ),
    bitbucketserverBaseURL: z
      .string()
      .min(1)
      .describe('REST API base URL of the server, e.g. "https://bitbucket.example.com/rest".'),
    deleteHookOnFinish: deleteHookOnFinish(),
    metadata: metadata(),
    filter: filter(),
    tls: tls(),
    checkInterval: positiveDuration(
      'How often registered hooks are checked and re-created if missing. Defaults to 1m.',
    ),
  }),
  [
    {
      cel: `${celNonEmpty('repositories')} || ${celNonEmpty('projects')} || (${celHas('projectKey')} && ${celHas('repositorySlug')})`,
      holds: (v) =>
        isSet(v, 'repositories') ||
        isSet(v, 'projects') ||
        (isSet(v, 'projectKey') && isSet(v, 'repositorySlug')),
      message: 'list at least one project or repository (or the older projectKey + repositorySlug)',
      field: 'repositories',
      reason: 'FieldValueRequired',
    },
  ],
);
export type BitbucketServerEventSource = z.infer<typeof BitbucketServerEventSource>;

// ------------------------------------------------------------------------------------ Gerrit --

export const GerritEventSource = obj(
  'Receives Gerrit webhook deliveries, and registers the hook on projects.',
  {
    webhook: webhookField('Gerrit'),
    hookName: z.string().min(1).describe('Name under which the hook is registered in Gerrit.'),
    events: z
      .array(z.string().min(1))
      .describe('Gerrit event types to register for, e.g. ["patchset-created"].'),
    auth: BasicAuth.describe('Gerrit user name and password used to register the hook.'),
    gerritBaseURL: z.string().min(1).describe('Base URL of the Gerrit server.'),
    deleteHookOnFinish: deleteHookOnFinish(),
    metadata: metadata(),
    projects: z
      .array(z.string().min(1))
      .min(1)
      .describe('Projects to register the hook on, e.g. ["team/app"].'),
    sslVerify: bool('Ask Gerrit to verify the TLS certificate of this endpoint when delivering.'),
    filter: filter(),
    maxTries: count('How many times Gerrit tries to deliver one event.'),
  },
);
export type GerritEventSource = z.infer<typeof GerritEventSource>;

// ------------------------------------------------------------------------------------- Slack --

export const SlackEventSource = obj('Receives Slack Events API and interaction requests.', {
  signingSecret: SecretKeySelector.describe(
    'Secret key holding the Slack app signing secret; requests with a wrong signature are refused.',
  ),
  token: SecretKeySelector.describe(
    'Secret key holding the Slack token used for the URL verification handshake.',
  ),
  webhook: webhookField('Slack'),
  metadata: metadata(),
  filter: filter(),
});
export type SlackEventSource = z.infer<typeof SlackEventSource>;

// ------------------------------------------------------------------------------------ Stripe --

export const StripeEventSource = crossRules(
  obj('Receives Stripe webhook deliveries, and can create the webhook endpoint in Stripe.', {
    webhook: webhookField('Stripe'),
    createWebhook: bool('Create the webhook endpoint in Stripe (needs apiKey and webhook.url).'),
    apiKey: secretRef('Secret key holding the Stripe API key; needed when createWebhook is true.'),
    eventFilter: strList('Stripe event types to accept, e.g. ["charge.succeeded"]; all when empty.'),
    metadata: metadata(),
    namespace: str(
      'Field from older upstream versions; ignored (Secrets are read from the EventSource namespace).',
    ),
  }),
  [
    {
      cel: `!(has(self.createWebhook) && self.createWebhook) || ${celHas('apiKey')}`,
      holds: (v) => v.createWebhook !== true || v.apiKey !== undefined,
      message: 'apiKey is needed when createWebhook is true',
      field: 'apiKey',
      reason: 'FieldValueRequired',
    },
  ],
);
export type StripeEventSource = z.infer<typeof StripeEventSource>;

// ------------------------------------------------------------------------------- StorageGRID --

export const StorageGridFilter = obj('Narrows StorageGRID notifications by object key.', {
  prefix: z.string().describe('Only keys starting with this text match ("" matches all).'),
  suffix: z.string().describe('Only keys ending with this text match ("" matches all).'),
});

export const StorageGridEventSource = obj('Receives NetApp StorageGRID bucket notifications.', {
  webhook: webhookField('StorageGRID'),
  events: z
    .array(z.string().min(1))
    .describe('Notification types to subscribe to, e.g. ["s3:ObjectCreated:*"].'),
  filter: StorageGridFilter.optional().describe('Only objects whose keys match are reported.'),
  topicArn: z.string().min(1).describe('ARN of the StorageGRID endpoint (topic) notifications are sent to.'),
  bucket: z.string().min(1).describe('Bucket to configure notifications on.'),
  region: str('Region of the bucket. Defaults to us-east-1.'),
  authToken: SecretKeySelector.describe('Secret key holding the StorageGRID management API token.'),
  apiURL: z.string().min(1).describe('Base URL of the StorageGRID management API.'),
  metadata: metadata(),
  tls: tls(),
});
export type StorageGridEventSource = z.infer<typeof StorageGridEventSource>;

// ----------------------------------------------------------------------------------- AWS SNS --

export const SNSEventSource = obj(
  'Subscribes this endpoint to an AWS SNS topic and receives its notifications.',
  {
    webhook: webhookField('SNS'),
    topicArn: z.string().min(1).describe('ARN of the SNS topic to subscribe to.'),
    accessKey: secretRef(
      'Secret key holding the AWS access key id; ambient AWS credentials are used when unset.',
    ),
    secretKey: secretRef('Secret key holding the AWS secret access key.'),
    region: z.string().min(1).describe('AWS region of the topic, e.g. "us-east-1".'),
    roleARN: str('IAM role to assume for the subscription calls.'),
    metadata: metadata(),
    validateSignature: bool('Check the signature SNS puts on every message and refuse forged ones.'),
    filter: filter(),
    endpoint: str('Alternative SNS API endpoint (e.g. a local emulator) instead of the AWS one.'),
  },
);
export type SNSEventSource = z.infer<typeof SNSEventSource>;
