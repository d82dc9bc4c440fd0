#include "net/http_response.h"

#include <stdio.h>
#include <string.h>

#include "util/buf.h"
#include "util/json_write.h"

const char *http_status_text(int status)
{
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

void http_respond(conn *c, int status, const char *content_type, const char *body, size_t len,
                  const char *extra_headers)
{
    buf out;
    buf_init(&out);
    buf_printf(&out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n", status,
               http_status_text(status), content_type, len);
    if (extra_headers)
        buf_append_str(&out, extra_headers);
    if (c->http_close)
        buf_append_str(&out, "Connection: close\r\n");
    buf_append_str(&out, "\r\n");
    buf_append(&out, body, len);
    conn_send_raw(c, out.data, out.len);
    buf_free(&out);
}

void http_respond_error(conn *c, int status, const char *message)
{
    buf body;
    buf_init(&body);
    buf_append_str(&body, "{\"error\":");
    json_write_cstr(&body, message);
    buf_printf(&body, ",\"code\":%d}", status);
    http_respond(c, status, "application/json", body.data, body.len, NULL);
    buf_free(&body);
}
