/* ws_frame — RFC 6455 frame headers: parse what clients send, encode what
 * the server sends (unmasked).
 *
 * Hand-written (see docs/design.md): the server encodes a published event's
 * frame once and shares the bytes among all subscribers, which no packaged
 * WebSocket library allows. Fuzzed by fuzz/fuzz_ws_reader.c. */
#ifndef HARK_NET_WS_FRAME_H
#define HARK_NET_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ws_opcode {
    WS_OP_CONTINUATION = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

/* Close codes from RFC 6455 §7.4.1 used by the framing layer. */
enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL_ERROR = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_NO_STATUS = 1005,
    WS_CLOSE_INVALID_PAYLOAD = 1007, /* e.g. invalid UTF-8 in a text frame */
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL_ERROR = 1011,
};

typedef struct ws_frame_header {
    bool fin;
    uint8_t opcode;
    bool masked;
    uint8_t mask[4];
    uint64_t payload_len;
    size_t header_len; /* 2..14 bytes */
} ws_frame_header;

#define WS_FRAME_MAX_HEADER 14
#define WS_SERVER_HEADER_MAX 10 /* unmasked server frame header */

/* Parses one frame header at data[0..len).
 * Returns header_len (> 0) when the header is complete, 0 when more bytes are
 * needed, or the negative close code to send (-1002 for protocol errors:
 * reserved bits set, unknown opcode, control frame fragmented or > 125
 * bytes, unmasked frame when require_mask, 64-bit length with the top bit
 * set or non-minimal length encoding is accepted; -1009 when payload_len >
 * max_payload). */
int ws_frame_parse_header(const uint8_t *data, size_t len, bool require_mask, uint64_t max_payload,
                          ws_frame_header *out);

/* XORs payload with the mask; offset is the payload position of payload[0]
 * (for unmasking a payload in pieces). */
void ws_frame_unmask(uint8_t *payload, size_t len, const uint8_t mask[4], uint64_t offset);

/* Writes an unmasked server frame header into out and returns its length. */
/* The header length of an unmasked server frame carrying len bytes. */
static inline size_t ws_frame_header_len(size_t len)
{
    return len < 126 ? 2 : len < 65536 ? 4 : 10;
}

size_t ws_frame_encode_header(uint8_t out[WS_SERVER_HEADER_MAX], uint8_t opcode, bool fin,
                              uint64_t payload_len);

/* Writes a whole close frame (header + 2-byte code + reason, reason cut to
 * fit 125 bytes) into out (at least 127 bytes); returns its length. */
size_t ws_frame_encode_close(uint8_t *out, uint16_t code, const char *reason);

#endif
