package flinkops.examples;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;

/**
 * One card authorization as {@code examples/fraud-scoring/producer.py} writes it to Kafka:
 * {@code {"auth_id", "card_id", "merchant_id", "amount_cents", "ts", "produced_at"}}, all integers.
 *
 * <p>A Flink POJO (public fields, public no-argument constructor), so Flink serializes it with its POJO
 * serializer instead of Kryo, and it can cross the network between the parser and the scorer.
 */
public final class Authorization {
    /** Unique, increasing id given by the producer. */
    public long authId;
    /** The card; the Kafka message key and the key of the scoring state. */
    public long cardId;
    /** Where the card was used. */
    public long merchantId;
    /** The authorized amount in cents. */
    public long amountCents;
    /** Event time in epoch milliseconds. */
    public long ts;
    /** Wall-clock epoch milliseconds when the producer sent the record (carried through for latency). */
    public long producedAt;

    public Authorization() {}

    /**
     * Reads an authorization from its JSON text; every field must be present and integral.
     *
     * @throws IllegalArgumentException naming the whole record when a field is missing or not an integer
     */
    static Authorization fromJson(JsonNode node, String text) {
        Authorization auth = new Authorization();
        auth.authId = field(node, "auth_id", text);
        auth.cardId = field(node, "card_id", text);
        auth.merchantId = field(node, "merchant_id", text);
        auth.amountCents = field(node, "amount_cents", text);
        auth.ts = field(node, "ts", text);
        auth.producedAt = field(node, "produced_at", text);
        return auth;
    }

    private static long field(JsonNode node, String name, String text) {
        JsonNode value = node == null ? null : node.get(name);
        if (value == null || !value.isIntegralNumber() || !value.canConvertToLong()) {
            throw new IllegalArgumentException(
                    "malformed authorization (field '" + name + "' missing or not an integer): '" + text + "'");
        }
        return value.longValue();
    }
}
