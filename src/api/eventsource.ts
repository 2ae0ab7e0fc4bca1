// EventSource schema: one file per family of source types under ./eventsource/.
export * from './eventsource/index.ts';
