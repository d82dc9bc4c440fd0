// hark-resume's package entry: the resume module (also its default export)
// and the chat helpers.
export { attachResume, default } from './hark-resume.mjs';
export * from './hark-chat.mjs';
