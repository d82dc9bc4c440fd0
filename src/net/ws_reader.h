/* ws_reader — turns a byte stream from a client into whole WebSocket
 * messages: unmasking, fragmentation, interleaved control frames, UTF-8
 * validation of text messages, and a maximum message size.
 *
 * Memory: an idle reader owns nothing (both pointers NULL). Bytes are only
 * kept between reads while a frame or a fragmented message is incomplete;
 * everything else is handled straight from the caller's (shared) buffer. */
#ifndef HARK_NET_WS_READER_H
#define HARK_NET_WS_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ws_reader {
    uint8_t *pending; /* unparsed tail of the stream (incomplete frame) */
    uint32_t pending_len;
    uint32_t pending_cap;
    uint8_t *message; /* fragments of a message still missing its FIN frame */
    uint32_t message_len;
    uint32_t message_cap;
    uint8_t message_opcode; /* TEXT/BINARY of the message being assembled, 0 if none */
} ws_reader;

typedef struct ws_reader_callbacks {
    /* A complete data message (opcode WS_OP_TEXT, already UTF-8 checked, or
     * WS_OP_BINARY). data is writable and valid only during the call.
     * Return false to stop reading (the connection is being closed). */
    bool (*on_message)(void *ctx, uint8_t opcode, uint8_t *data, size_t len);
    /* A control frame: WS_OP_PING, WS_OP_PONG or WS_OP_CLOSE, payload
     * unmasked (<= 125 bytes). For CLOSE the payload has been checked: empty,
     * or a valid code followed by UTF-8. Return false to stop reading. */
    bool (*on_control)(void *ctx, uint8_t opcode, uint8_t *data, size_t len);
} ws_reader_callbacks;

/* Feeds data[0..len) (the reader may unmask it in place). Returns 0 when all
 * bytes were consumed or kept, 1 when a callback returned false, or a close
 * code (1002, 1007, 1009) when the client broke the protocol; after an error
 * the reader must not be fed again. */
int ws_reader_feed(ws_reader *r, uint8_t *data, size_t len, size_t max_message,
                   const ws_reader_callbacks *cb, void *ctx);

/* Frees what the reader holds; it can be reused afterwards. */
void ws_reader_free(ws_reader *r);

#endif
