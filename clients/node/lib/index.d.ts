// Type declarations for the social-sidecar Node client: the whole public API of lib/index.js (CommonJS) and
// lib/index.mjs (ESM). Self-contained: no @types/node needed; Node's own types fit the structural ones below.

// ---- Wire values -------------------------------------------------------------------------------------------------

export type Platform = 'facebook' | 'instagram' | 'linkedin' | 'youtube' | 'whatsapp';
export declare const PLATFORMS: readonly Platform[];

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Params every platform method takes (camelCase, as on the wire). */
export interface CommonParams {
  credentialRef: string;
  customerId: string;
  agentId?: string;
  correlationId?: string;
}

export interface PublishParams extends CommonParams {
  agentId: string;
  /** At most 255 characters: the same key with the same params answers the stored result. */
  idempotencyKey?: string;
}

export interface FacebookPostParams extends PublishParams {
  text?: string;
  link?: string;
  imageUrl?: string;
  imageUrls?: string[];
  videoUrl?: string;
  kind?: 'feed' | 'story' | 'reel';
  /** A single photo post only. */
  altText?: string;
  /** A video post only. */
  videoTitle?: string;
  /** A custom thumbnail (JPEG or PNG) for a `videoUrl` post, `kind: feed`; fetched by the sidecar. */
  thumbnailUrl?: string;
  /** A button on a link post (needs `link`, no media), pointing at the link. */
  callToAction?:
    | 'LEARN_MORE' | 'SHOP_NOW' | 'SIGN_UP' | 'BOOK_TRAVEL' | 'DOWNLOAD' | 'GET_OFFER' | 'SUBSCRIBE' | 'WATCH_MORE'
    | 'APPLY_NOW' | 'ORDER_NOW' | 'GET_QUOTE' | 'CONTACT_US' | 'DONATE_NOW' | 'LISTEN_NOW' | 'SEE_MORE';
  /** A local video (absolute path): chunked for `kind: feed`, streamed to Meta's upload host for a reel or story. */
  videoPath?: string;
  /** RFC 3339, 10 minutes to 30 days ahead: Facebook publishes the feed post then (`status: 'scheduled'`). */
  publishAt?: string;
}

export interface InstagramPostParams extends PublishParams {
  caption?: string;
  imageUrl?: string;
  videoUrl?: string;
  /** A local reel (absolute path); Facebook Login accounts only. */
  videoPath?: string;
  items?: Array<{ imageUrl: string } | { videoUrl: string }>;
  kind?: 'feed' | 'reel' | 'story' | 'carousel';
  /** A single feed image only. */
  altText?: string;
  /** Feed image: with `x`, `y` (0-1 from the top left); reel: `username` only. */
  userTags?: Array<{ username: string; x?: number; y?: number }>;
  /** 1-3 usernames; not on stories. */
  collaborators?: string[];
  locationId?: string;
  /** Reels: a cover image, or the frame at `thumbOffsetMs` (not both). */
  coverUrl?: string;
  thumbOffsetMs?: number;
  shareToFeed?: boolean;
}

export interface LinkedInPostParams extends PublishParams {
  text?: string;
  imageUrl?: string;
  link?: string;
  visibility?: 'PUBLIC' | 'CONNECTIONS' | 'LOGGED_IN';
  /** 2-20 images: a multi-image post. */
  imageUrls?: string[];
  /** With `imageUrl`. */
  altText?: string;
  /** With `link`: the article card. */
  linkTitle?: string;
  linkDescription?: string;
  linkThumbnailUrl?: string;
  /** PDF, PowerPoint or Word; needs `documentTitle`. */
  documentUrl?: string;
  /** A local document (absolute path); needs `documentTitle`. */
  documentPath?: string;
  documentTitle?: string;
  videoUrl?: string;
  /** A local video (absolute path). */
  videoPath?: string;
  /** Captions for the video (`videoUrl` or `videoPath`): a SubRip (.srt) file the sidecar fetches. */
  captionsUrl?: string;
  /** Captions for the video from a local SubRip (.srt) file (absolute path). */
  captionsPath?: string;
}

export interface YouTubePostParams extends PublishParams {
  title: string;
  description?: string;
  videoUrl?: string;
  /** A file on the sidecar's machine, under the `media.localRoots` setting (empty by default, which refuses it). */
  videoPath?: string;
  tags?: string[];
  privacyStatus?: 'public' | 'unlisted' | 'private';
  categoryId?: string;
  madeForKids?: boolean;
  notifySubscribers?: boolean;
  /** The title and description's language, e.g. `en` or `pt-BR`. */
  defaultLanguage?: string;
  containsSyntheticMedia?: boolean;
  license?: 'youtube' | 'creativeCommon';
  embeddable?: boolean;
  /** JPEG or PNG, at most 2 MB; set once the video exists. */
  thumbnailUrl?: string;
  /** A local .jpg/.png (absolute path); not with `thumbnailUrl`. */
  thumbnailPath?: string;
  /** Added once the video exists; the token needs the `youtube` scope. */
  playlistId?: string;
  /** RFC 3339, in the future: the video stays private until then (`privacyStatus` private or absent). */
  publishAt?: string;
}

export type WhatsAppMediaSource = { url: string; path?: never } | { path: string; url?: never };

export interface WhatsAppSendParams extends PublishParams {
  /** E.164: `+15551234567`. */
  to: string;
  text?: string;
  /** With `text`: show a preview of the first link. */
  previewUrl?: boolean;
  /** Media: `url` (WhatsApp fetches it) or `path` (a local file the sidecar uploads; its media id is reused). */
  image?: WhatsAppMediaSource & { caption?: string };
  video?: WhatsAppMediaSource & { caption?: string };
  audio?: WhatsAppMediaSource;
  document?: WhatsAppMediaSource & { caption?: string; filename?: string };
  /** No caption: WhatsApp sends stickers alone. */
  sticker?: WhatsAppMediaSource;
  location?: { latitude: number; longitude: number; name?: string; address?: string };
  /** The Cloud API's contact cards; each needs `name.formatted_name`. */
  contacts?: Array<{ name: { formatted_name: string; [key: string]: Json }; [key: string]: Json }>;
  /** The Cloud API's interactive object: `type` `button` (1-3 reply buttons) or `list` (up to 10 rows). */
  interactive?: { type: 'button' | 'list'; body: { text: string }; action: { [key: string]: Json }; header?: { [key: string]: Json }; footer?: { text: string } };
  /** An empty emoji removes an earlier reaction. */
  reaction?: { messageId: string; emoji: string };
  template?: { name: string; language: string; components?: Json[] };
  /** The id of the message this one replies to (not with `reaction`). */
  replyTo?: string;
}

export interface PostResult {
  platform: Platform;
  postId: string;
  /** The public URL where the platform has one; null for WhatsApp. */
  postUrl: string | null;
  status: 'published' | 'processing' | 'accepted' | 'scheduled';
  attempts: number;
  durationMs: number;
  replayed: boolean;
  /** Time spent waiting on rate limits (absent in answers stored by older sidecars). */
  waitedMs?: number;
  /** Who can see the post as the platform set it, read back after the publish (YouTube). */
  privacyStatus?: string;
  /** What the platform did differently from what was asked (a public upload YouTube locked to private). */
  warnings?: string[];
}

export interface ValidationResult {
  valid: boolean;
  accountId: string;
  accountName?: string;
  scopes?: string[];
  missing?: string[];
  expiresAt?: string;
  problems?: string[];
  quota?: { used: number; total: number; windowSeconds: number | null };
  /** What works now but will not for long (a LinkedIn version close to its sunset). */
  warnings?: string[];
}

export interface RefreshResult {
  refreshed: boolean;
  expiresAt: string | null;
}

/** The post a `delete`, `insights` or `status` call is about. */
export interface PostParams extends CommonParams {
  postId: string;
}

export interface DeleteParams extends PostParams {
  /** A retried delete with the same key answers the stored result. */
  idempotencyKey?: string;
}

export type MetricName = 'views' | 'impressions' | 'reach' | 'likes' | 'comments' | 'shares' | 'saves' | 'clicks';

export interface InsightsParams extends PostParams {
  /** Only these metrics (all the platform reports when absent). */
  metrics?: MetricName[];
}

export interface DeleteResult {
  platform: Platform;
  postId: string;
  /** False when the post was already gone; `reason` says so. */
  deleted: boolean;
  reason?: string;
  attempts: number;
  durationMs: number;
  replayed?: boolean;
}

export interface InsightsResult {
  platform: Platform;
  postId: string;
  fetchedAt: string;
  /** Only the metrics the platform reports for the post (PROTOCOL.md maps the platforms' names). */
  metrics: Partial<Record<MetricName, number>>;
  /** The platform's own answer, as it came. */
  raw: Json;
  attempts: number;
  durationMs: number;
}

export interface StatusResult {
  platform: Platform;
  postId: string;
  state: 'processing' | 'published' | 'scheduled' | 'failed' | 'deleted';
  detail: string | null;
  postUrl: string | null;
  attempts: number;
  durationMs: number;
}

/** One `$/progress` value of a call made with `onProgress`. */
export interface Progress {
  kind: 'begin' | 'report' | 'end';
  title?: string;
  message?: string;
  percentage?: number;
  bytesSent?: number;
  bytesTotal?: number;
}

export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface RequestOptions {
  /** Aborting sends `$/cancelRequest`; the call rejects with the signal's reason. */
  signal?: AbortSignalLike;
  /** Milliseconds (default: the Sidecar's `timeoutMs`; null: no limit). */
  timeoutMs?: number | null;
}

export interface PlatformCallOptions extends RequestOptions {
  /** Receives each `$/progress` value of the call (uploads, processing waits). */
  onProgress?: (progress: Progress) => void;
}

export interface PlatformMethods {
  validate(params: CommonParams, options?: PlatformCallOptions): Promise<ValidationResult>;
  refresh(params: CommonParams, options?: PlatformCallOptions): Promise<RefreshResult>;
  /** Rejects with `Unsupported` where the platform cannot delete (Instagram, WhatsApp). */
  delete(params: DeleteParams, options?: PlatformCallOptions): Promise<DeleteResult>;
  /** Rejects with `Unsupported` on WhatsApp. */
  insights(params: InsightsParams, options?: PlatformCallOptions): Promise<InsightsResult>;
  /** Rejects with `Unsupported` on WhatsApp. */
  status(params: PostParams, options?: PlatformCallOptions): Promise<StatusResult>;
}

/** A platform that publishes with `post` (params `P`); `callPlatform` takes params this version does not name. */
export interface Poster<P extends PublishParams> extends PlatformMethods {
  post(params: P, options?: PlatformCallOptions): Promise<PostResult>;
}

export interface Sender<P extends PublishParams> extends PlatformMethods {
  send(params: P, options?: PlatformCallOptions): Promise<PostResult>;
}

export interface InitializeResult {
  serverInfo: { name: string; version: string };
  protocolVersion: string;
  capabilities: {
    platforms: Partial<Record<Platform, string[]>>;
    methods?: string[];
    idempotency?: { durable: boolean; retentionHours: number };
  };
}

export interface Health {
  status: 'ok' | 'shutting_down';
  version: string;
  uptimeMs: number;
  inFlight: number;
  /** Configuration that works now but will not for long (a LinkedIn version more than 10 months old). */
  warnings?: string[];
}

export interface OperationStats {
  total: number;
  success: number;
  failure: number;
  successRate: number | null;
  failureRate: number | null;
  avgMs: number | null;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  retries: number;
  notPermitted: number;
  rateLimitWaits: number;
  replayed: number;
  errors: Record<string, number>;
}

export interface MetricsSnapshot {
  /** Per platform: its operations (`post`, `send`, `validate`, `refresh`) and `breakerOpens`. */
  platforms: Partial<Record<Platform, { breakerOpens: number } & { [operation: string]: OperationStats | number }>>;
  since: string;
}

export type BreakerState = 'CLOSED' | 'OPEN' | 'HALF_OPEN';

export interface BreakerStatus {
  enabled: boolean;
  platforms: Partial<
    Record<Platform, { state: BreakerState; consecutiveFailures: number; opens: number; retryAfterMs: number | null }>
  >;
}

export interface BreakerReset {
  platform: Platform;
  state: 'CLOSED';
}

export interface MetricEvent {
  eventId: string;
  timestamp: string;
  customerId: string;
  agentId?: string | null;
  platform: Platform;
  operation: string;
  correlationId?: string | null;
  success: boolean;
  postId?: string;
  postUrl?: string | null;
  errorKind?: string;
  errorCode?: number;
  errorMessage?: string;
  httpStatus?: number;
  attempts: number;
  /** Milliseconds, with a fraction. */
  durationMs: number;
  replayed: boolean;
}

export interface BreakerChange {
  platform: Platform;
  from: BreakerState;
  to: BreakerState;
  at: string;
}

export interface LogEntry {
  level?: string;
  msg?: string;
  [field: string]: unknown;
}

export interface CredentialRequest {
  platform: Platform;
  credentialRef: string;
  customerId: string;
}

export interface Credentials {
  accessToken: string;
  accountId: string;
  refreshToken?: string;
  /** RFC 3339 text or Unix seconds. */
  expiresAt?: string | number;
  clientId?: string;
  clientSecret?: string;
  variant?: 'instagram_login';
}

export interface CredentialUpdate extends CredentialRequest {
  accessToken: string;
  refreshToken?: string;
  accountId: string;
  expiresAt: string | null;
  variant?: string;
}

export interface SidecarOptions {
  binary?: string;
  /** Extra command-line arguments, e.g. `['--log-level', 'debug']`. */
  args?: string[];
  /** Added to this process's environment for the child. */
  env?: Record<string, string>;
  /** `initialize.config` (protocol/PROTOCOL.md §7), sent again after every restart. */
  config?: { [key: string]: Json };
  clientInfo?: { name: string; version?: string };
  /** Throw CredentialNotFound (permanent) or CredentialError (retryable) to fail the call with that message. */
  resolveCredentials?: (
    request: CredentialRequest,
    context: { signal: AbortSignalLike },
  ) => Credentials | Promise<Credentials>;
  /** Persist a refreshed token; the sidecar counts the return as the acknowledgement and asks again on a throw. */
  onCredentialsUpdated?: (update: CredentialUpdate) => unknown;
  /** What a call may take (default 30000 ms; null: no limit); a platform call sends it as `deadlineMs`. */
  timeoutMs?: number | null;
  /** How much longer than timeoutMs the client waits for the sidecar's answer (default 1000). */
  answerGraceMs?: number;
  shutdownTimeoutMs?: number;
  restartDelaysMs?: number[];
}

/** A minimal EventEmitter surface with the Sidecar's events typed. */
export interface SidecarEvents {
  event: [event: MetricEvent];
  breakerChange: [change: BreakerChange];
  log: [entry: LogEntry];
  notification: [method: string, params: unknown];
  crash: [error: SidecarCrashed];
}

export declare class Sidecar {
  constructor(options?: SidecarOptions);
  readonly facebook: Poster<FacebookPostParams>;
  readonly instagram: Poster<InstagramPostParams>;
  readonly linkedin: Poster<LinkedInPostParams>;
  readonly youtube: Poster<YouTubePostParams>;
  readonly whatsapp: Sender<WhatsAppSendParams>;
  readonly pid: number | null;
  readonly initializeResult: InitializeResult | null;
  readonly restarts: number;
  readonly lastExitCode: number | null;
  readonly lastSignal: string | null;
  supports(platform: Platform, operation: string): boolean;
  start(): Promise<InitializeResult>;
  request(method: string, params?: Json, options?: RequestOptions): Promise<unknown>;
  callPlatform(method: string, params?: { [key: string]: Json | undefined }, options?: PlatformCallOptions): Promise<unknown>;
  notify(method: string, params?: Json): Promise<void>;
  health(options?: RequestOptions): Promise<Health>;
  metricsSnapshot(options?: RequestOptions): Promise<MetricsSnapshot>;
  prometheus(options?: RequestOptions): Promise<string>;
  breakerStatus(options?: RequestOptions): Promise<BreakerStatus>;
  breakerReset(platform: Platform, options?: RequestOptions): Promise<BreakerReset>;
  close(): Promise<void>;
  on<E extends keyof SidecarEvents>(event: E, listener: (...args: SidecarEvents[E]) => void): this;
  once<E extends keyof SidecarEvents>(event: E, listener: (...args: SidecarEvents[E]) => void): this;
  off<E extends keyof SidecarEvents>(event: E, listener: (...args: SidecarEvents[E]) => void): this;
}

/** `binary`, else $SOCIAL_SIDECAR_BIN, else the repository's `.build/{release,debug}/social-sidecar`. */
export declare function findBinary(binary?: string): string;

// ---- Errors ------------------------------------------------------------------------------------------------------

export interface ErrorData {
  kind?: string;
  platform?: Platform;
  retryable?: boolean;
  attempts?: number;
  httpStatus?: number;
  platformCode?: number | string;
  platformSubcode?: number;
  platformMessage?: string;
  retryAfterMs?: number;
  resetAt?: string;
  field?: string;
  reason?: string;
  [key: string]: unknown;
}

export declare class SidecarError extends Error {
  constructor(message: string, options?: { code?: number | null; kind?: string | null; data?: ErrorData | null; method?: string | null });
  /** The JSON-RPC code; null for errors the client raises itself. */
  readonly code: number | null;
  readonly kind: string;
  readonly data: ErrorData;
  readonly method: string | null;
  readonly retryable: boolean;
  readonly retryAfterMs: number | null;
  static readonly defaultCode: number | null;
  static readonly defaultKind: string;
  static readonly defaultRetryable: boolean;
}

export declare class PermanentError extends SidecarError {}
export declare class TransientExhausted extends SidecarError {}
export declare class RateLimited extends SidecarError {}
export declare class AuthFailed extends SidecarError {}
export declare class CircuitOpen extends SidecarError {}
export declare class CredentialUnavailable extends SidecarError {}
export declare class DeadlineExceeded extends SidecarError {}
export declare class OutcomeUnknown extends SidecarError {}
export declare class QuotaExhausted extends SidecarError {}
export declare class IdempotencyConflict extends SidecarError {}
export declare class IdempotencyMismatch extends SidecarError {}
export declare class Overloaded extends SidecarError {}
export declare class Unsupported extends SidecarError {}
export declare class InvalidParams extends SidecarError {}
export declare class MethodNotFound extends SidecarError {}
export declare class InternalError extends SidecarError {}
export declare class ServerNotInitialized extends SidecarError {}
export declare class RequestCancelled extends SidecarError {}
export declare class ProtocolError extends SidecarError {}
export declare class CallTimeout extends SidecarError {}
export declare class SidecarUnavailable extends SidecarError {}
export declare class SidecarCrashed extends SidecarUnavailable {
  /** True for publishes, which may have reached the platform before the crash. */
  outcomeUnknown?: boolean;
}
export declare class ShuttingDown extends SidecarUnavailable {}

/** Throw from resolveCredentials: its message reaches the caller's CredentialUnavailable; retryable. */
export declare class CredentialError extends Error {
  constructor(message: string);
  readonly retryable: boolean;
}
/** Throw from resolveCredentials when the credential does not exist: not retryable. */
export declare class CredentialNotFound extends CredentialError {}

export declare function errorFromResponse(
  error: { code?: number; message?: string; data?: ErrorData },
  method?: string | null,
): SidecarError;

// ---- The protocol layer, for other uses --------------------------------------------------------------------------

export interface ReadableLike {
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

export interface WritableLike {
  write(chunk: Uint8Array): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/** Throw from a Connection request handler to answer with this JSON-RPC error. */
export declare class RemoteError extends Error {
  constructor(code: number, message: string, data?: Json);
  readonly code: number;
  readonly data: Json | undefined;
}

export type RequestHandler = (params: unknown, context: { signal: AbortSignalLike }) => unknown;

export declare class Connection {
  constructor(
    readable: ReadableLike,
    writable: WritableLike,
    options?: { handlers?: Record<string, RequestHandler>; maxFrameBytes?: number },
  );
  readonly closed: boolean;
  readonly closeReason: string;
  readonly inFlight: number;
  request(method: string, params?: Json, options?: RequestOptions): Promise<unknown>;
  notify(method: string, params?: Json): void;
  failPending(makeError?: (method: string) => Error): void;
  end(reason: string): void;
  on(event: 'notification', listener: (method: string, params: unknown) => void): this;
  on(event: 'close', listener: (reason: string) => void): this;
}

export declare class FramingError extends Error {}

export declare class FrameDecoder {
  constructor(options?: { maxFrameBytes?: number });
  /** Bytes held that do not yet make a frame. */
  readonly buffered: number;
  /** Feeds a chunk of any size; returns every complete body. Throws FramingError on bad framing. */
  push(chunk: Uint8Array): Uint8Array[];
}

/** One JSON-RPC message as a frame: `Content-Length: N\r\n\r\n` + the JSON. */
export declare function encodeMessage(message: Json | object): Uint8Array;
