/* The TLS side of a request: kept apart from request.c, whose parsers the
 * http_path fuzz target links without OpenSSL's SSL library. */
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include "http/http_int.h"

void hub_http__peer_certs(struct hub_http_request *r, X509 **leaf, STACK_OF(X509) * *chain)
{
    *leaf = NULL;
    *chain = NULL;
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
    if (ssl == NULL)
        return;
    *leaf = SSL_get1_peer_certificate(ssl);
    if (*leaf != NULL)
        *chain = SSL_get_peer_cert_chain(ssl);
}
