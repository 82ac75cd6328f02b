/**
 * The custom_id's slot number in a line template (line-template.ts). A module of its own so that the
 * render and row-hash threads, which read it, do not load what compiling a template needs (zod,
 * through the structured-output schemas: ~35 ms of each thread's start).
 */
export const ID_SLOT = -1;
