#include "net/ws_frame.h"

#include <string.h>

static bool ws_frame_opcode_known(uint8_t op)
{
    return op == WS_OP_CONTINUATION || op == WS_OP_TEXT || op == WS_OP_BINARY ||
           op == WS_OP_CLOSE || op == WS_OP_PING || op == WS_OP_PONG;
}

int ws_frame_parse_header(const uint8_t *data, size_t len, bool require_mask, uint64_t max_payload,
                          ws_frame_header *out)
{
    if (len < 2)
        return 0;
    uint8_t b0 = data[0], b1 = data[1];
    /* Everything below is decidable from the first two bytes, so a broken
     * client is refused before we wait for (or buffer) anything more. */
    if (b0 & 0x70)
        return -WS_CLOSE_PROTOCOL_ERROR; /* RSV1-3: no extension was negotiated */
    uint8_t op = b0 & 0x0F;
    if (!ws_frame_opcode_known(op))
        return -WS_CLOSE_PROTOCOL_ERROR;
    bool fin = (b0 & 0x80) != 0;
    bool masked = (b1 & 0x80) != 0;
    uint8_t len7 = b1 & 0x7F;
    if (require_mask && !masked)
        return -WS_CLOSE_PROTOCOL_ERROR;
    if ((op & 0x08) && (!fin || len7 > 125))
        return -WS_CLOSE_PROTOCOL_ERROR; /* control frames: unfragmented, <= 125 */

    size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    size_t header_len = 2 + ext + (masked ? 4 : 0);
    if (len < 2 + ext)
        return 0;
    uint64_t plen = len7;
    if (ext == 2) {
        plen = ((uint64_t)data[2] << 8) | data[3];
    } else if (ext == 8) {
        plen = 0;
        for (size_t i = 0; i < 8; i++)
            plen = (plen << 8) | data[2 + i];
        if (plen >> 63)
            return -WS_CLOSE_PROTOCOL_ERROR;
    }
    /* Non-minimal length encodings are accepted, as most servers do. */
    if (plen > max_payload)
        return -WS_CLOSE_TOO_BIG;
    if (len < header_len)
        return 0;

    out->fin = fin;
    out->opcode = op;
    out->masked = masked;
    if (masked)
        memcpy(out->mask, data + 2 + ext, 4);
    else
        memset(out->mask, 0, 4);
    out->payload_len = plen;
    out->header_len = header_len;
    return (int)header_len;
}

void ws_frame_unmask(uint8_t *payload, size_t len, const uint8_t mask[4], uint64_t offset)
{
    /* Rotate the mask so key[0] applies to payload[0], then XOR a word at a
     * time: message payloads can be large and this is on every inbound byte. */
    uint8_t key[8];
    for (size_t i = 0; i < 8; i++)
        key[i] = mask[(offset + i) & 3];
    uint64_t kw;
    memcpy(&kw, key, sizeof kw);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, payload + i, sizeof w);
        w ^= kw;
        memcpy(payload + i, &w, sizeof w);
    }
    for (; i < len; i++)
        payload[i] ^= key[i & 7];
}

size_t ws_frame_encode_header(uint8_t out[WS_SERVER_HEADER_MAX], uint8_t opcode, bool fin,
                              uint64_t payload_len)
{
    out[0] = (uint8_t)((fin ? 0x80 : 0x00) | (opcode & 0x0F));
    if (payload_len < 126) {
        out[1] = (uint8_t)payload_len;
        return 2;
    }
    if (payload_len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(payload_len >> 8);
        out[3] = (uint8_t)payload_len;
        return 4;
    }
    out[1] = 127;
    for (size_t i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
    return 10;
}

size_t ws_frame_encode_close(uint8_t *out, uint16_t code, const char *reason)
{
    size_t rlen = reason ? strlen(reason) : 0;
    if (rlen > 123) {
        rlen = 123;
        /* Cut on a character boundary: the peer fails the connection (1007)
         * on a reason that is not valid UTF-8. */
        while (rlen > 0 && ((uint8_t)reason[rlen] & 0xC0) == 0x80)
            rlen--;
    }
    size_t n = ws_frame_encode_header(out, WS_OP_CLOSE, true, 2 + rlen);
    out[n++] = (uint8_t)(code >> 8);
    out[n++] = (uint8_t)code;
    if (rlen)
        memcpy(out + n, reason, rlen);
    return n + rlen;
}
