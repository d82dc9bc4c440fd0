// Types of the package entry (index.mjs).
export * from './hark-resume';
export { default } from './hark-resume';
export * from './hark-chat';
