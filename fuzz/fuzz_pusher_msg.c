/* Fuzz target: pusher_msg_decode on arbitrary frame bytes, then every encoder
 * on the decoded fields, and the encoded frame decoded again (the event and
 * channel must survive the round trip). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/pusher_msg.h"

static void round_trip(const buf *frame, const pusher_msg *m)
{
    pusher_msg back;
    if (pusher_msg_decode(frame->data, frame->len, &back, NULL, 0) != 0)
        abort();
    if (back.event_len != m->event_len || memcmp(back.event, m->event, m->event_len) != 0)
        abort();
    if ((back.channel == NULL) != (m->channel == NULL))
        abort();
    if (m->channel &&
        (back.channel_len != m->channel_len || memcmp(back.channel, m->channel, m->channel_len)))
        abort();
    pusher_msg_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pusher_msg m;
    char err[128];
    if (pusher_msg_decode((const char *)data, size, &m, err, sizeof err) != 0) {
        if (strnlen(err, sizeof err) == sizeof err)
            abort(); /* the reason must be NUL-terminated */
        pusher_msg_free(&m);
        return 0;
    }

    static const char *const keys[] = {"channel", "auth", "channel_data", "user_data"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        size_t len;
        const char *s = pusher_msg_data_string(&m, keys[i], &len);
        if (s && strlen(s) != len)
            abort(); /* decoded strings never hold a NUL */
    }

    buf out;
    buf_init(&out);
    char *data_json = m.data ? json_dumps(m.data, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    size_t data_len = data_json ? strlen(data_json) : 0;

    pusher_encode_raw_data(&out, m.event, m.event_len, m.channel, m.channel_len, data_json,
                           data_len, m.channel, m.channel_len);
    round_trip(&out, &m);
    buf_reset(&out);

    pusher_encode_string_data(&out, m.event, m.event_len, m.channel, m.channel_len,
                              data_json ? data_json : "", data_len);
    round_trip(&out, &m);
    buf_reset(&out);

    pusher_encode_error(&out, (int)m.event_len, m.event);
    pusher_encode_subscription_error(&out, m.channel, m.channel_len, m.event, m.channel,
                                     (int)m.channel_len);

    free(data_json);
    buf_free(&out);
    pusher_msg_free(&m);
    return 0;
}
