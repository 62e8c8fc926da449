/* SPDX-License-Identifier: MIT */
/* google.h — Google service account (JSON key, RS256 JWT bearer flow with libcrypto, token
 * cache) and the few Sheets v4 calls the report needs: spreadsheets.get, one batchUpdate that
 * adds the missing tabs and sizes every grid to its data, one values:batchClear, and
 * values:batchUpdate RAW in chunks of about 2 MB. Library layer: returns -errno with a French
 * reason in the caller's buffer; never logs; the key and tokens never reach any text. */
#pragma once

#include <signal.h>
#include <stddef.h>

#include "timeutil.h"

#define GOOGLE_SHEETS_SCOPE "https://www.googleapis.com/auth/spreadsheets"
#define GOOGLE_JWT_LIFETIME_SEC 3600
/* A token is renewed when less than this is left. */
#define GOOGLE_TOKEN_MARGIN_SEC 300
#define GOOGLE_CHUNK_BYTES (2 * 1024 * 1024)

typedef struct GoogleKey GoogleKey;

/* Parses a service-account key file (type service_account, client_email, private_key PEM). */
int google_key_parse(const char *json, GoogleKey **ret, char *error, size_t error_size);
GoogleKey *google_key_free(GoogleKey *k);
static inline void google_key_freep(GoogleKey **k) {
        if (*k)
                google_key_free(*k);
}
const char *google_key_email(const GoogleKey *k);

/* header.claims.signature, RS256, claims iss/scope/aud/iat/exp (exp = iat + 1 h). Owned result. */
int google_jwt_sign(const GoogleKey *k, const char *aud, const char *scope, usec_t now, char **ret);
/* base64url without padding; owned result. */
char *base64url_encode(const void *data, size_t n);

typedef struct GoogleSheets GoogleSheets;

/* Takes ownership of *key (left NULL). */
int google_sheets_new(GoogleKey **key, const char *token_url, const char *api_url, const char *spreadsheet_id,
                      const volatile sig_atomic_t *cancelled, GoogleSheets **ret);
struct Secrets;
/* Registers the tokens the client obtains (signed JWT, access token) in secrets (redact.h). */
void google_sheets_set_secrets(GoogleSheets *g, struct Secrets *secrets);
GoogleSheets *google_sheets_free(GoogleSheets *g);
static inline void google_sheets_freep(GoogleSheets **g) {
        if (*g)
                google_sheets_free(*g);
}
void google_sheets_counters(const GoogleSheets *g, unsigned *requests, unsigned *retries);

/* A bearer token, cached until GOOGLE_TOKEN_MARGIN_SEC before it expires. Not owned. */
int google_sheets_token(GoogleSheets *g, const char **ret, char *error, size_t error_size);

typedef struct GoogleTab {
        const char *title;
        const char *csv_path;  /* the cells, header first (RFC 4180, optional BOM) */
        size_t rows;           /* records in the file, header included */
        size_t columns;
} GoogleTab;

typedef enum GoogleWriteState {
        GOOGLE_WRITE_NOT_STARTED,  /* nothing in the spreadsheet was changed */
        GOOGLE_WRITE_STARTED,      /* tabs added, resized or cleared: a rerun repairs it */
        GOOGLE_WRITE_DONE,
} GoogleWriteState;

/* Makes each tab hold exactly its CSV file's cells. */
int google_sheets_publish(GoogleSheets *g, const GoogleTab *tabs, size_t n, GoogleWriteState *state, char *error,
                          size_t error_size);
