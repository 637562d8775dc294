export * from './communities.js';
export * from './constants.js';
export * from './errors.js';
export * from './messages.js';
export * from './notification.js';
export * from './open.js';
export * from './prefix.js';
export * from './update.js';
