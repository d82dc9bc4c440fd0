/* libFuzzer target for the WebSocket reader.
 *
 * Input layout: byte 0 picks the max message size (low 2 bits) and how many
 * split sizes follow (bits 2-4, 0-7); then the split sizes, one byte each;
 * then the client byte stream, fed in chunks of those sizes (cycling; a
 * size of 0 feeds an empty chunk). Each chunk is a fresh exact-size heap copy
 * so ASan catches any read past it or any pointer the reader keeps into it.
 * The reader is freed at the end so LeakSanitizer sees anything it keeps. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/utf8.h"
#include "net/ws_frame.h"
#include "net/ws_reader.h"

static bool fuzz_on_message(void *ctx, uint8_t opcode, uint8_t *data, size_t len)
{
    size_t max = *(size_t *)ctx;
    if (len > max || (opcode != WS_OP_TEXT && opcode != WS_OP_BINARY))
        abort();
    if (opcode == WS_OP_TEXT && !utf8_valid(data, len))
        abort();
    if (len)
        data[len - 1] ^= 1;                /* documented as writable */
    return !(len == 1 && data[0] == 0xFF); /* sometimes stop */
}

static bool fuzz_on_control(void *ctx, uint8_t opcode, uint8_t *data, size_t len)
{
    (void)ctx;
    if (len > 125 || (opcode != WS_OP_PING && opcode != WS_OP_PONG && opcode != WS_OP_CLOSE))
        abort();
    if (opcode == WS_OP_CLOSE && (len == 1 || (len >= 2 && !utf8_valid(data + 2, len - 2))))
        abort();
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t maxes[4] = {0, 125, 1000, 1u << 20};
    if (size < 1)
        return 0;
    size_t max = maxes[data[0] & 3];
    size_t nsplits = (data[0] >> 2) & 7;
    if (size < 1 + nsplits)
        return 0;
    const uint8_t *splits = data + 1;
    const uint8_t *p = data + 1 + nsplits;
    size_t left = size - 1 - nsplits;

    /* All-zero sizes would feed empty chunks forever: one, then the rest. */
    bool any_nonzero = false;
    for (size_t i = 0; i < nsplits; i++)
        any_nonzero |= splits[i] != 0;

    ws_reader r;
    memset(&r, 0, sizeof r);
    const ws_reader_callbacks cb = {fuzz_on_message, fuzz_on_control};
    for (size_t i = 0; left > 0 || i == 0; i++) {
        size_t n = any_nonzero ? splits[i % nsplits] : i == 0 && nsplits ? 0 : left;
        if (n > left)
            n = left;
        uint8_t *chunk = malloc(n ? n : 1);
        if (!chunk)
            abort();
        memcpy(chunk, p, n);
        int rc = ws_reader_feed(&r, chunk, n, max, &cb, &max);
        free(chunk);
        p += n;
        left -= n;
        if (rc != 0) {
            if (rc != 1 && rc != 1002 && rc != 1007 && rc != 1009)
                abort();
            break; /* must not be fed again */
        }
        /* Nothing is kept that is not needed. */
        if ((r.pending == NULL) != (r.pending_len == 0) || r.pending_len > r.pending_cap)
            abort();
        if (r.message_opcode == 0 && (r.message || r.message_len))
            abort();
        if (r.message_len > max || r.message_len > r.message_cap)
            abort();
    }
    ws_reader_free(&r);
    if (r.pending || r.message)
        abort();
    return 0;
}
