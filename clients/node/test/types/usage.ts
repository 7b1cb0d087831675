// Compiled by `tsc -p test/types` (scripts/test): the declarations in lib/index.d.ts cover what a user writes, and
// refuse what a user should not write (each @ts-expect-error must stay an error).
import {
  Sidecar, CredentialNotFound, CredentialError, RateLimited, OutcomeUnknown, SidecarError, InvalidParams,
  PostResult, Progress, MetricEvent, BreakerChange, Credentials, CredentialRequest, MetricsSnapshot, BreakerStatus,
  PLATFORMS, findBinary, errorFromResponse, Connection, FrameDecoder, encodeMessage, RemoteError, CallTimeout,
  SidecarCrashed, DeleteResult, InsightsResult, StatusResult,
} from '../../lib';

declare function store(ref: string): Promise<{ token: string; account: string } | undefined>;

async function resolve({ platform, credentialRef }: CredentialRequest): Promise<Credentials> {
  const row = await store(credentialRef);
  if (!row) throw new CredentialNotFound(`no ${platform} credential ${credentialRef}`);
  if (!row.token) throw new CredentialError('the credential store is being migrated');
  return { accessToken: row.token, accountId: row.account };
}

async function main(): Promise<void> {
  const sidecar = new Sidecar({
    config: { retry: { maxAttempts: 3, maxWaitMs: 5000 } },
    resolveCredentials: resolve,
    onCredentialsUpdated: async (update) => { await store(update.credentialRef); },
    timeoutMs: 20000,
  });
  sidecar.on('event', (event: MetricEvent) => { const ms: number = event.durationMs; void ms; });
  sidecar.on('breakerChange', (change: BreakerChange) => { if (change.to === 'OPEN') void change.platform; });
  sidecar.on('crash', (error: SidecarCrashed) => { void error.outcomeUnknown; });
  const who = { credentialRef: 'CRED-1', customerId: 'CUST-1', agentId: 'AGENT-1' };
  try {
    const posted: PostResult = await sidecar.facebook.post({ ...who, text: 'Hello', idempotencyKey: 'k-1' });
    const url: string | null = posted.postUrl;
    const privacy: string | undefined = posted.privacyStatus;
    const warnings: string[] | undefined = posted.warnings;
    void url; void privacy; void warnings;
    const progress: Progress[] = [];
    await sidecar.youtube.post({ ...who, title: 'A video', videoPath: '/videos/a.mp4', privacyStatus: 'private' },
      { timeoutMs: 600000, onProgress: (p) => progress.push(p) });
    await sidecar.whatsapp.send({ ...who, to: '+15551234567', template: { name: 'hello_world', language: 'en_US' } });
    await sidecar.facebook.post({ ...who, kind: 'reel', text: 'A reel', videoPath: '/videos/reel.mp4' });
    await sidecar.linkedin.post({ ...who, text: 'Captioned', videoPath: '/v/a.mp4', captionsPath: '/v/a.srt' });
    await sidecar.linkedin.post({ ...who, videoUrl: 'https://cdn.example.com/a.mp4',
      captionsUrl: 'https://cdn.example.com/a.srt' });
    const valid: boolean = (await sidecar.linkedin.validate({ credentialRef: 'CRED-2', customerId: 'CUST-1' })).valid;
    void valid;
    const insights: InsightsResult = await sidecar.facebook.insights({ ...who, postId: '1_2', metrics: ['likes'] });
    const likes: number | undefined = insights.metrics.likes;
    const state: StatusResult['state'] = (await sidecar.youtube.status({ ...who, postId: 'v1' })).state;
    const gone: DeleteResult = await sidecar.linkedin.delete({ ...who, postId: 'urn:li:share:1', idempotencyKey: 'd-1' });
    await sidecar.facebook.post({ ...who, text: 'later', publishAt: '2026-12-24T18:00:00Z' });
    await sidecar.facebook.post({ ...who, videoUrl: 'https://v', thumbnailUrl: 'https://cover' });
    await sidecar.facebook.post({ ...who, link: 'https://l', callToAction: 'SHOP_NOW' });
    void [likes, state, gone.deleted, gone.reason];
    // @ts-expect-error: a delete names its post
    await sidecar.facebook.delete({ ...who });
    // @ts-expect-error: metrics are the common names
    await sidecar.facebook.insights({ ...who, postId: '1_2', metrics: ['hearts'] });
    // @ts-expect-error: YouTube needs a title
    await sidecar.youtube.post({ ...who, videoUrl: 'https://v' });
    // @ts-expect-error: WhatsApp has no post
    await sidecar.whatsapp.post({ ...who, to: '+1' });
    // @ts-expect-error: params are camelCase
    await sidecar.facebook.post({ ...who, image_url: 'https://i' });
  } catch (error) {
    if (error instanceof RateLimited) void (error.retryAfterMs ?? 60000);
    else if (error instanceof OutcomeUnknown || error instanceof CallTimeout) void error.method;
    else if (error instanceof InvalidParams) void error.data.field;
    else if (error instanceof SidecarError) void (error.retryable && error.kind);
  }
  const snapshot: MetricsSnapshot = await sidecar.metricsSnapshot();
  const status: BreakerStatus = await sidecar.breakerStatus();
  if (status.platforms.facebook?.state === 'OPEN') await sidecar.breakerReset('facebook');
  void snapshot.since;
  const text: string = await sidecar.prometheus();
  void text;
  await sidecar.close();
  void [PLATFORMS, findBinary(), errorFromResponse({ code: -31003 }), encodeMessage({ jsonrpc: '2.0' })];
  void [Connection, new FrameDecoder().push(new Uint8Array()), new RemoteError(-32601, 'no')];
}

void main();
