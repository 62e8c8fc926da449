/* SPDX-License-Identifier: MIT */
/* mail.c — message composition and the SendGrid, SMTP and outbox transports (see mail.h). Only
 * a provider's acceptance is "sent"; anything that might have reached the provider without an
 * answer is "uncertain" and never retried here, so a message is never delivered twice by us. */
#include "mail.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "config.h"
#include "http.h"
#include "util.h"
#include "utf8.h"

#define SENDGRID_PATH "/v3/mail/send"
#define SEND_MAX_ATTEMPTS 4
#define SEND_BACKOFF_BASE_USEC (500 * USEC_PER_MSEC)
#define SEND_ATTEMPT_TIMEOUT_USEC (60 * USEC_PER_SEC)
#define SMTP_CONNECT_TIMEOUT_SEC 10L
#define SMTP_TIMEOUT_SEC 120L
#define B64_LINE 76
#define HEADER_WORD_BYTES 45 /* 45 bytes → 60 base64 chars: an encoded-word stays under 75 */

struct Mailer {
        MailTransport transport; /* never AUTO once made */
        char *from_email;
        char *from_name;
        char *outbox_dir;
        char *sendgrid_url;      /* full mail/send URL */
        char *sendgrid_key;      /* secret */
        char *smtp_url;
        char *smtp_username;     /* secret */
        char *smtp_password;     /* secret */
        HttpClient *http;
        const volatile sig_atomic_t *cancelled;
        bool provider_down; /* a send already exhausted its retries: one attempt for the others */
};

/* ---- composition ------------------------------------------------------------------------- */

/* Base64 (libcrypto's encoder), cut into lines of `wrap` characters joined by CRLF; 0: one line. */
static void base64_encode(Buf *b, const unsigned char *in, size_t n, size_t wrap) {
        _cleanup_free_ char *enc = xmalloc(4 * ((n + 2) / 3) + 1);
        size_t len = (size_t) EVP_EncodeBlock((unsigned char *) enc, in, (int) n);
        size_t step = wrap ? wrap : len;
        for (size_t i = 0; i < len; i += step) {
                if (i > 0)
                        buf_puts(b, "\r\n");
                buf_add(b, enc + i, len - i < step ? len - i : step);
        }
}

static bool is_ascii_printable(const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p < 0x20 || *p > 0x7e)
                        return false;
        return true;
}

/* A header value: as is when printable ASCII, else RFC 2047 base64 encoded-words of whole
 * UTF-8 characters, folded. Control characters (CR, LF) never reach the header either way. */
static void header_text(Buf *b, const char *s) {
        if (is_ascii_printable(s)) {
                buf_puts(b, s);
                return;
        }
        size_t n = strlen(s), i = 0;
        bool first = true;
        while (i < n) {
                size_t k = n - i < HEADER_WORD_BYTES ? n - i : HEADER_WORD_BYTES;
                /* Back off to a character boundary: never split a UTF-8 sequence. */
                while (k > 1 && i + k < n && ((unsigned char) s[i + k] & 0xc0) == 0x80)
                        k--;
                if (!first)
                        buf_puts(b, "\r\n ");
                buf_puts(b, "=?UTF-8?B?");
                base64_encode(b, (const unsigned char *) s + i, k, 0);
                buf_puts(b, "?=");
                i += k;
                first = false;
        }
}

static void random_hex(char *buf, size_t bytes) {
        unsigned char r[32];
        if (bytes > sizeof r)
                bytes = sizeof r;
        if (getrandom(r, bytes, 0) != (ssize_t) bytes)
                for (size_t i = 0; i < bytes; i++) /* never fails for ≤ 256 bytes once seeded */
                        r[i] = (unsigned char) rand();
        for (size_t i = 0; i < bytes; i++)
                sprintf(buf + 2 * i, "%02x", r[i]);
}

/* RFC 5322 date in Montréal time; day and month names are fixed English tokens, not locale. */
static void format_rfc5322_date(usec_t t, char buf[static 64]) {
        static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
        static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
        time_t s = (time_t) (t / USEC_PER_SEC);
        struct tm tm;
        localtime_r(&s, &tm);
        long off = tm.tm_gmtoff / 60;
        snprintf(buf, 64, "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday], tm.tm_mday,
                 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
                 labs(off) / 60, labs(off) % 60);
}

/* Body text with CRLF line ends (base64 of the canonical form, RFC 2045 §6.8). */
static void add_part(Buf *b, const char *boundary, const char *type, const char *body) {
        Buf canon = {};
        for (const char *p = body; *p; p++) {
                if (*p == '\n' && (p == body || p[-1] != '\r'))
                        buf_add(&canon, "\r", 1);
                buf_add(&canon, p, 1);
        }
        buf_printf(b, "--%s\r\nContent-Type: %s; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
                   boundary, type);
        base64_encode(b, (const unsigned char *) strempty(canon.data), canon.len, B64_LINE);
        buf_puts(b, "\r\n");
        free(canon.data);
}

bool mail_address_valid(const char *s) {
        if (isempty(s) || strlen(s) > 254)
                return false;
        const char *at = strchr(s, '@');
        if (!at || at == s || !at[1] || strchr(at + 1, '@'))
                return false;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p <= ' ' || *p >= 0x7f || strchr("<>()[],;:\\\"", *p))
                        return false;
        return true;
}

int mail_compose(const MailMessage *m, usec_t date, char **ret, char **ret_message_id) {
        if (!mail_address_valid(m->from_email) || !mail_address_valid(m->to_email) || !m->subject || !m->text)
                return -EINVAL;

        char boundary[48] = "=_gazelle_", rnd[33], id_rnd[33], datebuf[64];
        random_hex(rnd, 16);
        strcat(boundary, rnd);
        random_hex(id_rnd, 16);
        format_rfc5322_date(date, datebuf);
        _cleanup_free_ char *message_id = xasprintf("<%" PRIu64 ".%s@%s>", date / USEC_PER_SEC, id_rnd,
                                                    strchr(m->from_email, '@') + 1);
        Buf b = {};
        buf_printf(&b, "Date: %s\r\nFrom: ", datebuf);
        if (!isempty(m->from_name)) {
                /* A display name with specials must be quoted; an encoded-word needs no quotes. */
                bool plain = is_ascii_printable(m->from_name) && !strpbrk(m->from_name, "\"\\");
                if (plain)
                        buf_printf(&b, "\"%s\"", m->from_name);
                else
                        header_text(&b, m->from_name);
                buf_puts(&b, " ");
        }
        buf_printf(&b, "<%s>\r\nTo: <%s>\r\nSubject: ", m->from_email, m->to_email);
        header_text(&b, m->subject);
        buf_printf(&b, "\r\nMessage-ID: %s\r\nMIME-Version: 1.0\r\n", message_id);
        if (m->html) {
                buf_printf(&b, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n"
                               "This is a multi-part message in MIME format.\r\n", boundary);
                add_part(&b, boundary, "text/plain", m->text);
                add_part(&b, boundary, "text/html", m->html);
                buf_printf(&b, "--%s--\r\n", boundary);
        } else {
                /* One part: its headers join the message's. */
                Buf part = {};
                add_part(&part, boundary, "text/plain", m->text);
                buf_puts(&b, strstr(part.data, "\r\n") + 2);
                free(part.data);
        }
        *ret = b.data;
        if (ret_message_id)
                *ret_message_id = TAKE_PTR(message_id);
        return 0;
}

char *html_escape(const char *s) {
        Buf b = {};
        buf_add(&b, "", 0);
        for (const char *p = strempty(s); *p; p++)
                switch (*p) {
                case '&':
                        buf_puts(&b, "&amp;");
                        break;
                case '<':
                        buf_puts(&b, "&lt;");
                        break;
                case '>':
                        buf_puts(&b, "&gt;");
                        break;
                case '"':
                        buf_puts(&b, "&quot;");
                        break;
                case '\'':
                        buf_puts(&b, "&#39;");
                        break;
                default:
                        buf_add(&b, p, 1);
                }
        return b.data;
}

void mail_result_clear(MailResult *r) {
        free(r->provider_id);
        *r = (MailResult) {};
}

const char *mail_outcome_to_string(MailOutcome o) {
        static const char *const names[] = {
                [MAIL_SENT] = "sent", [MAIL_QUEUED] = "queued", [MAIL_REFUSED] = "failed", [MAIL_UNCERTAIN] = "uncertain",
        };
        return o < ELEMENTSOF(names) ? names[o] : "?";
}

_printf_(3, 4) static int result_fail(MailResult *r, MailOutcome outcome, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        utf8_vformat(r->error, sizeof r->error, fmt, ap);
        va_end(ap);
        r->outcome = outcome;
        return outcome == MAIL_UNCERTAIN ? -EPROTO : -EIO;
}

/* ---- outbox ------------------------------------------------------------------------------ */

/* mail.outbox_dir outside the state directory, under the units' ProtectSystem=strict. The alerts
 * unit is named; gazelle-notify-failure@.service needs the same drop-in (README). */
static int outbox_read_only(Mailer *m, MailResult *r) {
        _cleanup_free_ char *hint = read_only_sandbox_hint(m->outbox_dir, "gazelle-alerts.service");
        return result_fail(r, MAIL_REFUSED, "boîte d'envoi (mail.outbox_dir) : %s", hint);
}

static int outbox_send(Mailer *m, const MailMessage *msg, MailResult *r) {
        usec_t now = now_realtime();
        _cleanup_free_ char *eml = NULL;
        int k = mail_compose(msg, now, &eml, NULL);
        if (k < 0)
                return result_fail(r, MAIL_REFUSED, "adresse invalide (expéditeur ou destinataire)");
        k = mkdir_p(m->outbox_dir, 0700);
        if (k < 0 && path_on_read_only_mount(m->outbox_dir))
                return outbox_read_only(m, r);
        if (k < 0)
                return result_fail(r, MAIL_REFUSED, "boîte d'envoi %s : %s", m->outbox_dir, strerror(-k));

        time_t s = (time_t) (now / USEC_PER_SEC);
        struct tm tm;
        char stamp[32], rnd[17];
        localtime_r(&s, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
        random_hex(rnd, 8);
        _cleanup_free_ char *name = xasprintf("%s-%s.eml", stamp, rnd);
        _cleanup_free_ char *tmp = xasprintf("%s/.%s.tmp", m->outbox_dir, name);
        _cleanup_free_ char *path = xasprintf("%s/%s", m->outbox_dir, name);

        /* Written under a dot name, fsynced, renamed: a reader of the outbox sees whole files. */
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && path_on_read_only_mount(m->outbox_dir))
                return outbox_read_only(m, r);
        if (fd < 0)
                return result_fail(r, MAIL_REFUSED, "boîte d'envoi %s : %m", m->outbox_dir);
        size_t len = strlen(eml), done = 0;
        while (done < len) {
                ssize_t w = write(fd, eml + done, len - done);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0) {
                        int e = errno;
                        (void) unlink(tmp);
                        return result_fail(r, MAIL_REFUSED, "écriture de %s : %s", tmp, strerror(e));
                }
                done += (size_t) w;
        }
        if (fsync(fd) < 0 || rename(tmp, path) < 0) {
                int e = errno;
                (void) unlink(tmp);
                return result_fail(r, MAIL_REFUSED, "écriture de %s : %s", path, strerror(e));
        }
        (void) fsync_directory(m->outbox_dir);
        r->outcome = MAIL_QUEUED;
        r->attempts = 1;
        r->provider_id = TAKE_PTR(name);
        return 0;
}

/* ---- retries ----------------------------------------------------------------------------- */

/* Exponential backoff with a little jitter, interrupted by cancellation. */
static unsigned max_attempts(const Mailer *m) {
        return m->provider_down ? 1 : SEND_MAX_ATTEMPTS;
}

static void backoff_sleep(const Mailer *m, unsigned attempt, usec_t retry_after) {
        usec_t wait = SEND_BACKOFF_BASE_USEC << (attempt - 1);
        unsigned char j;
        if (getrandom(&j, 1, 0) == 1)
                wait += wait * j / 1024;
        /* The provider's own Retry-After (already clamped by the HTTP layer) wins when longer. */
        if (retry_after > wait)
                wait = retry_after;
        usec_t until = now_monotonic() + wait;
        while (!is_cancelled(m->cancelled)) {
                usec_t now = now_monotonic();
                if (now >= until)
                        break;
                usec_t step = until - now < 50 * USEC_PER_MSEC ? until - now : 50 * USEC_PER_MSEC;
                (void) usleep((useconds_t) step);
        }
}

/* ---- SendGrid ---------------------------------------------------------------------------- */

static char *sendgrid_body(const MailMessage *msg) {
        cJSON *root = cJSON_CreateObject();
        cJSON *pers = cJSON_AddArrayToObject(root, "personalizations");
        cJSON *p = cJSON_CreateObject();
        cJSON *to = cJSON_AddArrayToObject(p, "to");
        cJSON *rcpt = cJSON_CreateObject();
        cJSON_AddStringToObject(rcpt, "email", msg->to_email);
        cJSON_AddItemToArray(to, rcpt);
        cJSON_AddItemToArray(pers, p);
        cJSON *from = cJSON_AddObjectToObject(root, "from");
        cJSON_AddStringToObject(from, "email", msg->from_email);
        if (!isempty(msg->from_name))
                cJSON_AddStringToObject(from, "name", msg->from_name);
        cJSON_AddStringToObject(root, "subject", msg->subject);
        cJSON *content = cJSON_AddArrayToObject(root, "content");
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "type", "text/plain");
        cJSON_AddStringToObject(t, "value", msg->text);
        cJSON_AddItemToArray(content, t);
        if (msg->html) {
                cJSON *h = cJSON_CreateObject();
                cJSON_AddStringToObject(h, "type", "text/html");
                cJSON_AddStringToObject(h, "value", msg->html);
                cJSON_AddItemToArray(content, h);
        }
        char *s = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        if (!s)
                abort();
        return s;
}

/* Transport failures where the request surely never reached the provider. */
static bool never_reached(int r) {
        return r == -ECONNREFUSED || r == -EHOSTUNREACH || r == -ENETUNREACH || r == -EADDRNOTAVAIL ||
               r == -EINVAL || r == -ECANCELED;
}

static int sendgrid_send(Mailer *m, const MailMessage *msg, MailResult *r) {
        if (!mail_address_valid(msg->from_email) || !mail_address_valid(msg->to_email))
                return result_fail(r, MAIL_REFUSED, "adresse invalide (expéditeur ou destinataire)");
        _cleanup_free_ char *body = sendgrid_body(msg);
        _cleanup_(secret_freep) char *auth = xasprintf("Authorization: Bearer %s", m->sendgrid_key);
        const char *headers[] = { auth, "Content-Type: application/json", NULL };
        HttpRequest req = {
                .method = "POST",
                .url = m->sendgrid_url,
                .headers = headers,
                .body = body,
                .body_len = strlen(body),
                .capture_header = "X-Message-Id",
                .no_retry = true, /* we decide: an attempt whose fate is unknown is never repeated */
        };

        for (unsigned attempt = 1;; attempt++) {
                HttpResponse resp = {};
                int k = http_perform(m->http, &req, &resp);
                r->attempts = attempt;
                if (k >= 0) {
                        r->outcome = MAIL_SENT;
                        r->provider_id = TAKE_PTR(resp.captured);
                        http_response_clear(&resp);
                        return 0;
                }
                bool retry;
                MailOutcome outcome;
                if (resp.status > 0) {
                        /* The provider answered: it did not take the message. */
                        outcome = MAIL_REFUSED;
                        retry = resp.status == 429 || resp.status >= 500;
                } else if (never_reached(k)) {
                        outcome = MAIL_REFUSED;
                        retry = k == -ECONNREFUSED || k == -EHOSTUNREACH || k == -ENETUNREACH;
                } else {
                        outcome = MAIL_UNCERTAIN;
                        retry = false;
                }
                if (!retry || attempt >= max_attempts(m) || is_cancelled(m->cancelled)) {
                        if (retry)
                                m->provider_down = true;
                        int ret = result_fail(r, outcome, "SendGrid (%u tentative%s) : %s", attempt,
                                              attempt > 1 ? "s" : "", resp.error[0] ? resp.error : strerror(-k));
                        http_response_clear(&resp);
                        return ret;
                }
                usec_t retry_after = resp.retry_after_usec;
                http_response_clear(&resp);
                backoff_sleep(m, attempt, retry_after);
        }
}

/* ---- SMTP -------------------------------------------------------------------------------- */

typedef struct Upload {
        const char *data;
        size_t len, pos;
} Upload;

static size_t upload_read(char *ptr, size_t size, size_t nmemb, void *userdata) {
        Upload *u = userdata;
        size_t n = size * nmemb;
        if (n > u->len - u->pos)
                n = u->len - u->pos;
        memcpy(ptr, u->data + u->pos, n);
        u->pos += n;
        return n;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(CURL *, curl_easy_cleanup);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct curl_slist *, curl_slist_free_all);

static int smtp_send(Mailer *m, const MailMessage *msg, MailResult *r) {
        _cleanup_free_ char *eml = NULL, *message_id = NULL;
        if (mail_compose(msg, now_realtime(), &eml, &message_id) < 0)
                return result_fail(r, MAIL_REFUSED, "adresse invalide (expéditeur ou destinataire)");
        bool require_tls = true;
        if (smtp_url_check(m->smtp_url, &require_tls) < 0)
                return result_fail(r, MAIL_REFUSED, "SMTP_URL invalide");
        _cleanup_free_ char *from = xasprintf("<%s>", msg->from_email);
        _cleanup_free_ char *to = xasprintf("<%s>", msg->to_email);

        for (unsigned attempt = 1;; attempt++) {
                _cleanup_(curl_easy_cleanupp) CURL *c = curl_easy_init();
                _cleanup_(curl_slist_free_allp) struct curl_slist *rcpt = curl_slist_append(NULL, to);
                if (!c || !rcpt)
                        return result_fail(r, MAIL_REFUSED, "libcurl : mémoire insuffisante");
                Upload up = { .data = eml, .len = strlen(eml) };
                char errbuf[CURL_ERROR_SIZE] = "";
                curl_easy_setopt(c, CURLOPT_URL, m->smtp_url);
                curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
                curl_easy_setopt(c, CURLOPT_USE_SSL, (long) (require_tls ? CURLUSESSL_ALL : CURLUSESSL_TRY));
                curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
                curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
                curl_easy_setopt(c, CURLOPT_READFUNCTION, upload_read);
                curl_easy_setopt(c, CURLOPT_READDATA, &up);
                curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
                curl_easy_setopt(c, CURLOPT_INFILESIZE, (long) up.len);
                curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, SMTP_CONNECT_TIMEOUT_SEC);
                curl_easy_setopt(c, CURLOPT_TIMEOUT, SMTP_TIMEOUT_SEC);
                curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
                curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
                if (m->smtp_username)
                        curl_easy_setopt(c, CURLOPT_USERNAME, m->smtp_username);
                if (m->smtp_password)
                        curl_easy_setopt(c, CURLOPT_PASSWORD, m->smtp_password);

                CURLcode cc = curl_easy_perform(c);
                long code = 0;
                (void) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
                r->attempts = attempt;
                if (cc == CURLE_OK) {
                        r->outcome = MAIL_SENT;
                        r->provider_id = TAKE_PTR(message_id);
                        return 0;
                }
                /* A 4xx/5xx reply or no connection at all: the server did not take the message.
                 * Anything else (timeout, connection lost) may have happened after DATA. */
                bool connect_failed = cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST;
                bool refused = connect_failed || code >= 400 || cc == CURLE_LOGIN_DENIED ||
                               cc == CURLE_USE_SSL_FAILED || cc == CURLE_SSL_CONNECT_ERROR;
                bool retry = connect_failed || (code >= 400 && code < 500);
                if (refused && retry && attempt >= max_attempts(m))
                        m->provider_down = true;
                if (!refused || !retry || attempt >= max_attempts(m) || is_cancelled(m->cancelled))
                        return result_fail(r, refused ? MAIL_REFUSED : MAIL_UNCERTAIN,
                                           "SMTP (%u tentative%s) : %s%s%ld", attempt, attempt > 1 ? "s" : "",
                                           errbuf[0] ? errbuf : curl_easy_strerror(cc), code ? ", réponse " : "",
                                           code);
                backoff_sleep(m, attempt, 0);
        }
}

/* ---- the mailer -------------------------------------------------------------------------- */

Mailer *mailer_free(Mailer *m) {
        if (!m)
                return NULL;
        free(m->from_email);
        free(m->from_name);
        free(m->outbox_dir);
        free(m->sendgrid_url);
        secret_freep(&m->sendgrid_key);
        free(m->smtp_url);
        secret_freep(&m->smtp_username);
        secret_freep(&m->smtp_password);
        http_client_free(m->http);
        free(m);
        return NULL;
}

_printf_(3, 4) static int config_error(char *error, size_t size, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        utf8_vformat(error, size, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

static int mailer_secrets(Mailer *m, char *error, size_t size) {
        static const struct {
                const char *credential, *env;
                size_t offset;
        } secrets[] = {
                { "sendgrid-api-key", "SENDGRID_API_KEY", offsetof(Mailer, sendgrid_key) },
                { "smtp-username", "SMTP_USERNAME", offsetof(Mailer, smtp_username) },
                { "smtp-password", "SMTP_PASSWORD", offsetof(Mailer, smtp_password) },
        };
        for (size_t i = 0; i < ELEMENTSOF(secrets); i++) {
                int r = config_read_secret(secrets[i].credential, secrets[i].env,
                                           (char **) ((char *) m + secrets[i].offset));
                if (r < 0)
                        return config_error(error, size, "credential %s: %s", secrets[i].credential, strerror(-r));
        }
        return 0;
}

int mailer_new(const Config *config, const volatile sig_atomic_t *cancel, Mailer **ret, char *error,
               size_t error_size) {
        const Settings *settings = &config->settings;
        _cleanup_(mailer_freep) Mailer *m = xmalloc(sizeof *m);
        *m = (Mailer) { .cancelled = cancel };
        int r = mailer_secrets(m, error, error_size);
        if (r < 0)
                return r;
        const char *smtp_url = config->smtp_url;
        m->transport = settings->transport;
        if (m->transport == MAIL_TRANSPORT_AUTO)
                m->transport = m->sendgrid_key ? MAIL_TRANSPORT_SENDGRID
                               : !isempty(smtp_url) ? MAIL_TRANSPORT_SMTP
                                                    : MAIL_TRANSPORT_OUTBOX;

        m->from_email = xstrdup(settings->sender_email ? settings->sender_email : "gazelle-scheduler@localhost");
        m->from_name = xstrdup(settings->sender_name ? settings->sender_name : "Gazelle Scheduler");
        m->outbox_dir = settings->outbox_dir ? xstrdup(settings->outbox_dir) : xasprintf("%s/outbox", config->state_dir);

        switch (m->transport) {
        case MAIL_TRANSPORT_SENDGRID: {
                if (!m->sendgrid_key)
                        return config_error(error, error_size, "mail.transport=sendgrid: SENDGRID_API_KEY "
                                            "(credential sendgrid-api-key) is not set");
                const char *base = config->sendgrid_api_url;
                size_t n = strlen(base);
                while (n > 0 && base[n - 1] == '/')
                        n--;
                m->sendgrid_url = xasprintf("%.*s%s", (int) n, base, SENDGRID_PATH);
                if (http_url_allowed(m->sendgrid_url) < 0)
                        return config_error(error, error_size, "SENDGRID_API_URL=%.100s: expected an https:// URL "
                                            "(http:// only to loopback)", base);
                HttpPolicy p;
                http_policy_default(&p);
                p.max_attempts = 1;
                p.attempt_timeout_usec = SEND_ATTEMPT_TIMEOUT_USEC;
                r = http_client_new(&p, 1, &m->http);
                if (r < 0)
                        return config_error(error, error_size, "HTTP client: %s", strerror(-r));
                http_client_set_cancel(m->http, cancel);
                break;
        }
        case MAIL_TRANSPORT_SMTP: {
                bool tls;
                if (isempty(smtp_url))
                        return config_error(error, error_size, "mail.transport=smtp: SMTP_URL is not set");
                if (smtp_url_check(smtp_url, &tls) < 0)
                        return config_error(error, error_size, "SMTP_URL=%.100s: expected smtp://HOST[:PORT] or "
                                            "smtps://HOST[:PORT]", smtp_url);
                m->smtp_url = xstrdup(smtp_url);
                break;
        }
        case MAIL_TRANSPORT_OUTBOX:
        default:
                m->transport = MAIL_TRANSPORT_OUTBOX;
                break;
        }
        if (m->transport != MAIL_TRANSPORT_OUTBOX && !settings->sender_email)
                return config_error(error, error_size, "mail.sender_email: required to send through %s",
                                    mailer_transport(m));
        *ret = TAKE_PTR(m);
        return 0;
}

const char *mailer_transport(const Mailer *m) {
        return m->transport == MAIL_TRANSPORT_SENDGRID ? "sendgrid"
               : m->transport == MAIL_TRANSPORT_SMTP   ? "smtp"
                                                       : "outbox";
}

const char *mailer_from_email(const Mailer *m) {
        return m->from_email;
}

const char *mailer_from_name(const Mailer *m) {
        return m->from_name;
}

int mailer_send(Mailer *m, const MailMessage *msg, MailResult *r) {
        *r = (MailResult) {};
        switch (m->transport) {
        case MAIL_TRANSPORT_SENDGRID:
                return sendgrid_send(m, msg, r);
        case MAIL_TRANSPORT_SMTP:
                return smtp_send(m, msg, r);
        default:
                return outbox_send(m, msg, r);
        }
}
