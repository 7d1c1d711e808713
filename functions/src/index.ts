/**
 * The Cloud Functions entry point: one HTTP function `api` serving /api/** through
 * functions-framework. Configuration is read and validated once per instance, at cold start.
 */
import * as ff from '@google-cloud/functions-framework';
import { createApi, type Api } from './api.js';
import { loadConfig } from './config.js';
import { functionsFrameworkHandler } from './http/ff-adapter.js';

let api: Api | null = null;
function instance(): Api {
  api ??= createApi(loadConfig());
  return api;
}

ff.http('api', functionsFrameworkHandler(() => instance().handle));

export { createApi } from './api.js';
export { loadConfig } from './config.js';
