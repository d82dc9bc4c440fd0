// Types for hark-resume (hark-resume.mjs).

/** What hark reported in `hark:resumed` for one subscription with `since`. */
export interface ResumeInfo {
    /** true: every event stored after `since` was replayed before this report. */
    recovered: boolean;
    /** How many events were replayed (0 when recovered is false). */
    count: number;
    /** Why hark could not resume (only when recovered is false). */
    reason?: string;
    /** The id this module sent as `since` on that subscribe. */
    since?: string;
}

/** Anything with the synchronous getItem/setItem of window.localStorage. */
export interface ResumeStorage {
    getItem(key: string): string | null;
    setItem(key: string, value: string): void;
    removeItem?(key: string): void;
    key?(index: number): string | null;
    readonly length?: number;
}

export interface ResumeOptions {
    /** Keeps the last id of each channel there too, so a new Pusher instance (a page reload) resumes. */
    storage?: ResumeStorage;
    /** Prefix of the storage keys; default `hark-resume:<app key>:`. */
    keyPrefix?: string;
    /** Called once per `hark:resumed` frame. */
    onResumed?: (channel: string, info: ResumeInfo) => void;
    /** Which channels get `since`; default every channel. */
    filter?: (channel: string) => boolean;
}

export interface Resume {
    /** The last id seen on channel (or read from storage), or undefined. */
    lastId(channel: string): string | undefined;
    /** Inside a bind/listen callback: the id of the event being delivered, undefined if it has none. */
    currentId(): string | undefined;
    /** Forgets the id of channel; with no argument, every id (in storage too, under the prefix). */
    forget(channel?: string): void;
    /** Sets the id the next subscribe to channel resumes from (throws TypeError on an invalid id). */
    setLastId(channel: string, id: string): void;
    /** Adds a resumed listener; returns a function that removes it. */
    on(event: 'resumed', fn: (channel: string, info: ResumeInfo) => void): () => void;
    /** Removes every patch from the Pusher instance. */
    detach(): void;
}

/** Attaches to a pusher-js 8 instance, or to a Laravel Echo instance (its connector.pusher). */
export function attachResume(pusher: object, options?: ResumeOptions): Resume;
export default attachResume;
