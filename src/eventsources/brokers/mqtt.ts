// `mqtt`: a topic filter on an MQTT broker, subscribed with QoS 1 in a persistent MQTT 5 session
// (the broker must speak MQTT 5), so the broker keeps messages while the source is away. The PUBACK for a message
// is sent only after the bus stored its event; a message whose event could not be stored is not
// acknowledged and the broker delivers it again after the source reconnects. MQTT packet ids
// are reused quickly, so they cannot serve as event ids: a redelivery after a crash may be
// published twice (at least once).
import mqttLib from 'mqtt';
import type { MQTTEventSource } from '../../api/eventsource.ts';
import type { SourceAdapter } from '../adapter.ts';
import { parseJsonRaw } from '../json.ts';
import { isDefiniteRefusal, reportRefusal } from '../retry.ts';

export const adapter: SourceAdapter<MQTTEventSource> = {
  type: 'mqtt',
  exclusive: true,
  async start(ctx) {
    const spec = ctx.spec;
    const tls = spec.tls;
    // Emits run one at a time, in arrival order; each message is acked after its own emit.
    let chain: Promise<void> = Promise.resolve();
    const client = mqttLib.connect(spec.url.replace(/^tcp:/, 'mqtt:').replace(/^ssl:/, 'mqtts:'), {
      clientId: spec.clientId,
      // MQTT 5: acknowledgements can wait for the bus (customHandleAcks), and the session (with
      // its unacknowledged messages) outlives a disconnect for a day.
      protocolVersion: 5,
      clean: false,
      properties: { sessionExpiryInterval: 86_400 },
      reconnectPeriod: 1000,
      ...(spec.auth?.username ? { username: (await ctx.resolveSecret(spec.auth.username)).trim() } : {}),
      ...(spec.auth?.password ? { password: (await ctx.resolveSecret(spec.auth.password)).trim() } : {}),
      ...(tls?.caCertSecret ? { ca: await ctx.resolveSecret(tls.caCertSecret) } : {}),
      ...(tls?.clientCertSecret ? { cert: await ctx.resolveSecret(tls.clientCertSecret) } : {}),
      ...(tls?.clientKeySecret ? { key: await ctx.resolveSecret(tls.clientKeySecret) } : {}),
      ...(tls?.insecureSkipVerify ? { rejectUnauthorized: false } : {}),
      customHandleAcks: (topic, message, packet, done) => {
        chain = chain.then(async () => {
          let body: unknown = message.toString('utf8');
          if (spec.jsonBody) {
            try {
              body = parseJsonRaw(body as string);
            } catch {
              ctx.processingFailed('invalid-json');
              ctx.log.warn({ topic }, 'mqtt: message is not JSON although jsonBody is set; dropped');
              done(0);
              return;
            }
          }
          try {
            await ctx.emit({
              topic,
              messageId: packet.messageId ?? 0,
              body,
              ...(spec.metadata ? { metadata: spec.metadata } : {}),
            });
            done(0);
          } catch (err) {
            if (isDefiniteRefusal(err)) {
              // Redelivered it would be refused again, for ever: acknowledged, counted, logged.
              reportRefusal(ctx, { topic }, err, 'acknowledged without an event');
              done(0);
              return;
            }
            // No PUBACK: the broker keeps the message and sends it again on the next connection.
            ctx.log.warn(
              { topic, err: (err as Error).message },
              'mqtt: event not stored; message left unacknowledged',
            );
            client.end(true, {}, () => client.reconnect());
          }
        });
      },
    });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    await client.subscribeAsync(spec.topic, { qos: 1 });
    ctx.log.info({ url: spec.url, topic: spec.topic }, 'mqtt: subscribed');
    return {
      async stop() {
        await chain;
        await client.endAsync();
      },
    };
  },
};
