/**
 * Entry point of the single executable (Node's SEA runs one CommonJS script).
 * The runtime settings come first: ESM evaluates imports in order, and the
 * bundle keeps that order.
 */
import './runtime.js';
import '../../daemon/main.js';
