// Types for hark-chat (hark-chat.mjs).

/** A pusher-js 8 instance, or a Laravel Echo instance (its connector.pusher is used). */
export type PusherLike = object;

/** One channel of a hark:unread answer. */
export interface UnreadCount {
    /** Retained events after the user's read cursor that the user did not send. */
    unread: number;
    /** The newest retained event's id, null when none. */
    last_id: string | null;
    /** The user's read cursor, null when never read. */
    read_id: string | null;
}

export interface UnreadAnswer {
    channels: Record<string, UnreadCount>;
}

export interface UnreadOptions {
    /** Rejects with reason 'timeout' after this long; default 10000, 0 never. */
    timeoutMs?: number;
}

/** How unread() failed. */
export interface ChatError extends Error {
    reason: 'rejected' | 'disconnected' | 'not_connected' | 'timeout' | 'detached' | 'bad_answer';
    /** pusher:error code (null from hark), with reason 'rejected'. */
    code?: number | null;
}

export interface Seen {
    /** The user who read. */
    userId: string;
    /** Read up to this history id. */
    id: string | null;
    channel: string;
}

export interface Typing {
    userId: string;
    typing: boolean;
    channel: string;
}

export interface Rejection {
    /** 'hark:read', 'hark:unread', 'hark:typing'. */
    event: string;
    /** "hark:<x> rejected: <why>". */
    message: string;
    code?: number | null;
}

/** What hark put at the top level of an event frame. */
export interface EventInfo {
    /** The author ("user_id"), when hark knows it. */
    userId: string | undefined;
    /** The history id, for events hark keeps. */
    id: string | undefined;
    channel: string | undefined;
    event: string;
}

export interface TypingInputOptions {
    /** typing:false after this long without a keystroke; default 3000. */
    idleMs?: number;
    /** typing:true again at most this often while keystrokes continue; default 2000. */
    renewMs?: number;
}

export interface TypingInput {
    /** Call on every input event. */
    keystroke(): void;
    /** Sends typing:false now if typing (message sent, input blurred). */
    stop(): void;
    /** Whether the last signal sent was typing:true. */
    readonly typing: boolean;
}

/** Sends hark:read: channel read up to id (without id: up to its newest event). Returns whether it was sent. */
export function markRead(pusher: PusherLike, channel: string, id?: string | null): boolean;
/** cb for every hark:read receipt from another connection on channel; returns off(). */
export function onSeen(pusher: PusherLike, channel: string, cb: (seen: Seen) => void): () => void;
/** The signed-in user's unread counts (of channels, or of every channel hark tracks for the user). */
export function unread(pusher: PusherLike, channels?: string[] | null, options?: UnreadOptions): Promise<UnreadAnswer>;
export function unread(pusher: PusherLike, options: UnreadOptions): Promise<UnreadAnswer>;
/** Sends hark:typing. Returns whether it was sent. */
export function typing(pusher: PusherLike, channel: string, isTyping: boolean): boolean;
/** A debounced typing signal for a text input. */
export function typingInput(pusher: PusherLike, channel: string, options?: TypingInputOptions): TypingInput;
/** cb for every hark:typing of another user on channel (and typing:false for each typer when this connection is lost); returns off(). */
export function onTyping(pusher: PusherLike, channel: string, cb: (typing: Typing) => void): () => void;
/** cb for every pusher:error "hark:<x> rejected: …"; returns off(). */
export function onRejected(pusher: PusherLike, cb: (rejection: Rejection) => void): () => void;
/** Inside a bind/listen callback: the event being delivered; otherwise undefined. Call once at start-up. */
export function currentEvent(pusher: PusherLike): EventInfo | undefined;
/**
 * channel.bind(eventName) with the author and the id on every channel type.
 * channel: a name, a pusher-js Channel, pusher.user, or a Laravel Echo channel.
 */
export function onEvent(
    pusher: PusherLike,
    channel: string | object,
    eventName: string,
    cb: (data: any, info: EventInfo) => void,
): () => void;
/** Removes the patches; pending unread() promises reject with reason 'detached'. */
export function detachChat(pusher: PusherLike): void;
