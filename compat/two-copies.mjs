// Both builds of the package in one process, as when an app imports it and a dependency
// requires it: a handler decorated by the CommonJS copy is found by the ESM copy's module
// (the metadata has one source of truth), and the module warns that two copies are loaded.
// Run by compat/run.mjs's `package` row against the built dist/, with REDIS_URL.
import 'reflect-metadata';
import { createRequire } from 'node:module';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

const esm = await import('../dist/index.js');
const cjs = createRequire(import.meta.url)('../dist/index.cjs');
if (esm.FlowFailureModule === cjs.FlowFailureModule) throw new Error('expected two copies: the ESM and the CommonJS build');

class Handlers {
  paymentFailed() {}
}
Injectable()(Handlers);
cjs.OnChildFailed('payments')(Handlers.prototype, 'paymentFailed', Object.getOwnPropertyDescriptor(Handlers.prototype, 'paymentFailed'));

const url = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
class AppModule {}
Module({
  imports: [esm.FlowFailureModule.forRoot({ connection: { host: url.hostname, port: Number(url.port || 6379) }, prefix: `compat-copies-${process.pid}` })],
  providers: [Handlers],
})(AppModule);

const lines = [];
const logger = { log: (m) => lines.push(`log ${m}`), warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`) };
const app = await NestFactory.createApplicationContext(AppModule, { logger });
await app.close();
const mapped = lines.some((line) => line.startsWith('log Mapped') && line.includes('Handlers.paymentFailed'));
const warned = lines.some((line) => line.startsWith('warn 2 copies of nestjs-flow-failure are loaded'));
if (!mapped || !warned) {
  console.error(lines.join('\n'));
  throw new Error(`two copies: handler found ${mapped}, warning logged ${warned}`);
}
console.log('two copies (ESM + CommonJS) in one app: the CommonJS-decorated handler was found, and the module warned');
