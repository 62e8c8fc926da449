/* SPDX-License-Identifier: MIT */
/* backup-image.c — the copy of a SQLite database in WAL mode at the speed of the disk.
 *
 * One read transaction pins a snapshot S. Chunk by chunk (1 MiB), the database file is copied
 * by the kernel (copy_file_range), the committed WAL frames of S for those pages are laid over
 * it, writeback of the chunk is started and what lies 8 MiB behind waited for (no writer meets
 * a large flush, and the final fsync is small); meanwhile the same pages
 * of S are read through SQLite itself (the backup API, into a destination VFS that compares
 * instead of writing), so the check costs no time of its own while the disk writes. Every page
 * must equal the copy: the copy is S, byte for byte, before the caller publishes it. The copy
 * has S's page count and is marked rollback-journal.
 *
 * Why the file and the frames give S (file formats: sqlite.org/fileformat2.html "The WAL file
 * format", sqlite.org/walformat.html "The wal-index"): S is the wal-index header at the moment
 * the read transaction began (mxFrame, nPage, salts, cumulative checksum). We read that header
 * just before and just after beginning: when both readings are equal, S is that header.
 * While our read transaction lasts, a checkpoint copies into the database file only frames
 * <= our read mark <= S.mxFrame, whose pages we overwrite with S's frames anyway, and never a
 * page S takes from the file; the WAL is restarted (frames overwritten) only while no reader
 * holds a WAL read mark, i.e. only when S needed no frame (nBackfill == mxFrame). Frames are
 * checked as SQLite's recovery checks them: salts equal to the header's, cumulative checksum,
 * and frame mxFrame must be a commit whose checksum is the one S recorded.
 *
 * The files are read through SQLite's own handles (SQLITE_FCNTL_FILE_POINTER,
 * SQLITE_FCNTL_JOURNAL_POINTER, xShmMap) and the kernel copy uses SQLite's own descriptor of
 * the database file: this process must never close a descriptor of those files, as closing
 * any one drops every POSIX lock the process holds on the file, SQLite's read locks included. */
#include "backup-image.h"
#include "utf8.h"

#include <dirent.h>
#include <stdarg.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define CHUNK_BYTES (1u << 20)     /* one copy_file_range call, one check step */
#define WRITEBACK_WINDOW_BYTES (8u << 20)
#define PROGRESS_BYTES (256u << 20)
#define PIN_ATTEMPTS 200
#define VERIFY_STEP_PAGES 4096
#define SOURCE_MMAP_BYTES (2LL << 30) /* SQLite caps it at its compile-time maximum */
#define PENDING_BYTE 0x40000000u   /* SQLite's lock byte: its page is never written */

#define WAL_HEADER_BYTES 32
#define WAL_FRAME_HEADER_BYTES 24
#define WAL_MAGIC 0x377f0682u      /* | 1: checksums in big-endian words */
#define WAL_FORMAT_VERSION 3007000u
#define WAL_INDEX_REGION_BYTES 32768
#define WAL_INDEX_BACKFILL_OFFSET 96

/* The wal-index header (walformat.html §2.1), as SQLite keeps it: native byte order, salts
 * as the raw bytes of the WAL header. */
typedef struct WalIndexHeader {
        uint32_t version;
        uint32_t unused;
        uint32_t change;
        uint8_t is_init;
        uint8_t big_endian_checksum;
        uint16_t page_size; /* 65536 is stored as 1 */
        uint32_t max_frame;
        uint32_t n_page;
        uint32_t frame_checksum[2];
        uint8_t salt[8];
        uint32_t checksum[2];
} WalIndexHeader;
_Static_assert(sizeof(WalIndexHeader) == 48, "wal-index header is 48 bytes");

/* The latest frame of one page in the snapshot. */
typedef struct FrameRef {
        uint32_t page;
        uint32_t frame;
} FrameRef;

typedef struct Image {
        RunContext *ctx;
        sqlite3 *src;
        sqlite3_file *db_file;
        const volatile uint8_t *shm;
        int src_fd; /* SQLite's own: never closed here */
        int dest_fd;
        WalIndexHeader snapshot;
        uint32_t backfilled; /* frames already in the database file when S was pinned */
        uint32_t page_size;
        uint32_t n_page;
        uint64_t size;
        uint64_t writeback_started, writeback_done;
        uint64_t file_end;      /* what the database file holds of S: the rest is in WAL frames */
        bool kernel_copy;
        sqlite3_file *wal;
        FrameRef *frames;       /* S's latest frame of each page, by page */
        size_t n_frames, next_frame;
        ImageStats *stats;
        char *reason;
        size_t reason_size;
} Image;

static uint32_t get_be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static uint32_t get_le32(const uint8_t *p) {
        return (uint32_t) p[3] << 24 | (uint32_t) p[2] << 16 | (uint32_t) p[1] << 8 | p[0];
}

/* SQLite's WAL checksum: over 32-bit words, in pairs, carried from one frame to the next. */
static void wal_checksum(bool big_endian, const uint8_t *p, size_t n, uint32_t s[2]) {
        uint32_t s0 = s[0], s1 = s[1];
        for (size_t i = 0; i + 8 <= n; i += 8) {
                s0 += (big_endian ? get_be32(p + i) : get_le32(p + i)) + s1;
                s1 += (big_endian ? get_be32(p + i + 4) : get_le32(p + i + 4)) + s0;
        }
        s[0] = s0;
        s[1] = s1;
}

/* Reads the wal-index header as a reader of SQLite does: the two copies, read in the opposite
 * order to how a writer updates them, must be equal and carry a valid checksum. */
static bool wal_index_read(const volatile uint8_t *shm, WalIndexHeader *ret, uint32_t *backfilled) {
        WalIndexHeader a, b;
        memcpy(&a, (const void *) shm, sizeof a);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        memcpy(&b, (const void *) (shm + sizeof a), sizeof b);
        if (memcmp(&a, &b, sizeof a) != 0 || !a.is_init)
                return false;
        uint32_t s[2] = {};
        wal_checksum(__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__, (const uint8_t *) &a, offsetof(WalIndexHeader, checksum), s);
        if (s[0] != a.checksum[0] || s[1] != a.checksum[1])
                return false;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        *backfilled = __atomic_load_n((const volatile uint32_t *) (shm + WAL_INDEX_BACKFILL_OFFSET), __ATOMIC_SEQ_CST);
        *ret = a;
        return true;
}

static int query_int64(sqlite3 *db, const char *sql, int64_t *ret) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                *ret = sqlite3_column_int64(st, 0);
                rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
        return rc;
}

/* SQLite's own descriptor of the database file (same device and inode), from /proc/self/fd. */
static int find_sqlite_fd(const char *path) {
        struct stat want;
        if (stat(path, &want) < 0)
                return -errno;
        DIR *d = opendir("/proc/self/fd");
        if (!d)
                return -errno;
        int found = -ENOENT;
        for (struct dirent *de; found < 0 && (de = readdir(d));) {
                char *end;
                long fd = strtol(de->d_name, &end, 10);
                struct stat st;
                if (*end || end == de->d_name || fd == dirfd(d) || fstat((int) fd, &st) < 0)
                        continue;
                int flags = fcntl((int) fd, F_GETFL);
                if (S_ISREG(st.st_mode) && st.st_dev == want.st_dev && st.st_ino == want.st_ino && flags >= 0 &&
                    (flags & O_ACCMODE) != O_WRONLY)
                        found = (int) fd;
        }
        closedir(d);
        return found;
}

static int fail(Image *im, int r, const char *fmt, ...) _printf_(3, 4);
static int fail(Image *im, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        utf8_vformat(im->reason, im->reason_size, fmt, ap);
        va_end(ap);
        return r;
}

/* The snapshot: BEGIN and a first read, between two equal readings of the wal-index header. */
static int pin_snapshot(Image *im) {
        for (int attempt = 0; attempt < PIN_ATTEMPTS; attempt++) {
                WalIndexHeader before, after;
                uint32_t backfilled, backfilled_after;
                int64_t n;
                if (!wal_index_read(im->shm, &before, &backfilled)) {
                        usleep(100);
                        continue;
                }
                if (sqlite3_exec(im->src, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
                        return -EOPNOTSUPP;
                /* A source that cannot be read now (locked exclusively, being recovered) is the
                 * backup API's to wait for and report. */
                if (query_int64(im->src, "SELECT count(*) FROM sqlite_master", &n) != SQLITE_OK) {
                        (void) sqlite3_exec(im->src, "COMMIT", NULL, NULL, NULL);
                        return -EOPNOTSUPP;
                }
                if (wal_index_read(im->shm, &after, &backfilled_after) && memcmp(&before, &after, sizeof before) == 0) {
                        im->snapshot = before;
                        im->backfilled = backfilled;
                        return 0;
                }
                (void) sqlite3_exec(im->src, "COMMIT", NULL, NULL, NULL);
                usleep(100 + 100 * (attempt % 10));
        }
        return -EOPNOTSUPP;
}

/* What the pinned snapshot is, as SQLite sees it, and whether the index header agrees. */
static int read_geometry(Image *im) {
        int64_t page_size = 0, n_page = 0;
        if (query_int64(im->src, "PRAGMA page_size", &page_size) != SQLITE_OK ||
            query_int64(im->src, "PRAGMA page_count", &n_page) != SQLITE_OK)
                return -EOPNOTSUPP;
        uint32_t hdr_page_size = im->snapshot.page_size == 1 ? 65536 : im->snapshot.page_size;
        if (im->snapshot.version != WAL_FORMAT_VERSION || hdr_page_size != page_size || n_page < 1 ||
            (im->snapshot.max_frame > 0 && im->snapshot.n_page != n_page) || im->backfilled > im->snapshot.max_frame)
                return -EOPNOTSUPP;
        im->page_size = (uint32_t) page_size;
        im->n_page = (uint32_t) n_page;
        im->size = (uint64_t) n_page * (uint64_t) page_size;
        im->stats->pages = im->n_page;
        im->stats->bytes = im->size;
        return 0;
}

/* Starts writeback of what was written since the last call, and waits for what lies more than
 * a window behind: the disk always has work queued, yet at most a window of the copy is ever
 * in flight or dirty, so no writer's fsync waits behind a large flush, and the final fsync
 * is small. */
static void writeback(Image *im, uint64_t upto) {
        if (upto > im->writeback_started) {
                (void) sync_file_range(im->dest_fd, (off_t) im->writeback_started,
                                       (off_t) (upto - im->writeback_started), SYNC_FILE_RANGE_WRITE);
                im->writeback_started = upto;
        }
        if (upto > im->writeback_done + WRITEBACK_WINDOW_BYTES) {
                uint64_t to = upto - WRITEBACK_WINDOW_BYTES;
                (void) sync_file_range(im->dest_fd, (off_t) im->writeback_done, (off_t) (to - im->writeback_done),
                                       SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                               SYNC_FILE_RANGE_WAIT_AFTER);
                im->writeback_done = to;
        }
}

static int write_error(Image *im, int e) {
        return fail(im, -e, "écriture de la copie : %s", strerror(e));
}

/* copy_file_range cannot cross some file systems: the same bytes through a buffer. */
static ssize_t copy_through_buffer(int in, off_t *in_off, int out, off_t *out_off, size_t len) {
        static const size_t buf_size = 1u << 20;
        _cleanup_free_ uint8_t *buf = xmalloc(buf_size);
        size_t n = len < buf_size ? len : buf_size;
        ssize_t got = pread(in, buf, n, *in_off);
        if (got <= 0)
                return got;
        for (ssize_t done = 0; done < got;) {
                ssize_t w = pwrite(out, buf + done, (size_t) (got - done), *out_off + done);
                if (w < 0)
                        return -1;
                done += w;
        }
        *in_off += got;
        *out_off += got;
        return got;
}

/* Bytes [start, end) of the copy from the database file (the part of it the file holds), by
 * the kernel. */
static int copy_range(Image *im, uint64_t start, uint64_t end) {
        off_t in = (off_t) start, out = (off_t) start;
        if (end > im->file_end)
                end = im->file_end;
        while ((uint64_t) in < end) {
                size_t len = (size_t) (end - (uint64_t) in);
                ssize_t n = im->kernel_copy ? copy_file_range(im->src_fd, &in, im->dest_fd, &out, len, 0)
                                            : copy_through_buffer(im->src_fd, &in, im->dest_fd, &out, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && im->kernel_copy &&
                    (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP || errno == ENOSYS || errno == EPERM)) {
                        im->kernel_copy = false;
                        continue;
                }
                if (n < 0)
                        return write_error(im, errno);
                if (n == 0) { /* the file shrank under us: verification will tell */
                        im->file_end = (uint64_t) in;
                        break;
                }
        }
        return 0;
}

static int read_wal(sqlite3_file *wal, void *buf, int n, int64_t off) {
        int rc = wal->pMethods->xRead(wal, buf, n, off);
        return rc == SQLITE_OK ? 0 : rc == SQLITE_IOERR_SHORT_READ ? -ENODATA : -EIO;
}

static int cmp_frame_ref(const void *a, const void *b) {
        const FrameRef *x = a, *y = b;
        if (x->page != y->page)
                return x->page < y->page ? -1 : 1;
        return x->frame < y->frame ? -1 : x->frame > y->frame;
}

/* Checks frames 1..mxFrame of S as SQLite's recovery would and lists, per page, the latest.
 * -EAGAIN: the WAL does not hold S (it was restarted under us, which the locking protocol
 * allows only when S needed no frame). */
static int collect_frames(Image *im) {
        const WalIndexHeader *s = &im->snapshot;
        if (s->max_frame == im->backfilled)
                return 0; /* every frame of S is already in the database file */
        if (sqlite3_file_control(im->src, "main", SQLITE_FCNTL_JOURNAL_POINTER, &im->wal) != SQLITE_OK || !im->wal ||
            !im->wal->pMethods)
                return -EAGAIN;
        uint8_t header[WAL_HEADER_BYTES];
        if (read_wal(im->wal, header, sizeof header, 0) < 0)
                return -EAGAIN;
        uint32_t magic = get_be32(header);
        bool big_endian = magic & 1;
        uint32_t sum[2] = {};
        wal_checksum(big_endian, header, 24, sum);
        if ((magic & ~1u) != WAL_MAGIC || get_be32(header + 4) != WAL_FORMAT_VERSION ||
            get_be32(header + 8) != im->page_size || memcmp(header + 16, s->salt, 8) != 0 ||
            sum[0] != get_be32(header + 24) || sum[1] != get_be32(header + 28))
                return -EAGAIN;

        size_t frame_bytes = WAL_FRAME_HEADER_BYTES + im->page_size;
        _cleanup_free_ uint8_t *frame = xmalloc(frame_bytes);
        _cleanup_free_ FrameRef *refs = xmalloc(sizeof(FrameRef) * s->max_frame);
        uint32_t commit_pages = 0;
        for (uint32_t i = 1; i <= s->max_frame; i++) {
                int64_t off = WAL_HEADER_BYTES + (int64_t) (i - 1) * (int64_t) frame_bytes;
                if (read_wal(im->wal, frame, (int) frame_bytes, off) < 0)
                        return -EAGAIN;
                wal_checksum(big_endian, frame, 8, sum);
                wal_checksum(big_endian, frame + WAL_FRAME_HEADER_BYTES, im->page_size, sum);
                if (memcmp(frame + 8, header + 16, 8) != 0 || sum[0] != get_be32(frame + 16) ||
                    sum[1] != get_be32(frame + 20) || get_be32(frame) == 0)
                        return -EAGAIN;
                refs[i - 1] = (FrameRef) { .page = get_be32(frame), .frame = i };
                commit_pages = get_be32(frame + 4);
                if ((i & 1023) == 0 && run_cancelled(im->ctx))
                        return fail(im, -EINTR, "interrompue");
        }
        /* The snapshot ends on a commit, with the page count and the checksum it recorded. */
        if (commit_pages != im->n_page || sum[0] != s->frame_checksum[0] || sum[1] != s->frame_checksum[1])
                return -EAGAIN;

        qsort(refs, s->max_frame, sizeof(FrameRef), cmp_frame_ref);
        size_t n = 0;
        for (size_t i = 0; i < s->max_frame; i++) {
                bool latest = i + 1 == s->max_frame || refs[i + 1].page != refs[i].page;
                if (latest && refs[i].page <= im->n_page)
                        refs[n++] = refs[i];
        }
        im->frames = TAKE_PTR(refs);
        im->n_frames = n;
        im->stats->wal_frames = (uint32_t) n;
        return 0;
}

/* Lays S's frames of pages [first, end) (1-based) over the copy. */
static int overlay_frames(Image *im, uint32_t first, uint32_t end) {
        _cleanup_free_ uint8_t *page = NULL;
        for (; im->next_frame < im->n_frames && im->frames[im->next_frame].page < end; im->next_frame++) {
                const FrameRef *f = &im->frames[im->next_frame];
                if (f->page < first)
                        continue;
                if (!page)
                        page = xmalloc(im->page_size);
                int64_t off = WAL_HEADER_BYTES +
                              (int64_t) (f->frame - 1) * (WAL_FRAME_HEADER_BYTES + im->page_size) + WAL_FRAME_HEADER_BYTES;
                if (read_wal(im->wal, page, (int) im->page_size, off) < 0)
                        return -EAGAIN;
                if (pwrite(im->dest_fd, page, im->page_size, (off_t) (f->page - 1) * im->page_size) !=
                    (ssize_t) im->page_size)
                        return write_error(im, errno ? errno : EIO);
        }
        return 0;
}

/* The header says rollback journal (file format bytes 18-19 = 1): a backup is one file, and
 * reading it never creates -wal or -shm files beside it. */
static int mark_rollback_journal(Image *im) {
        static const uint8_t legacy[2] = { 1, 1 };
        if (pwrite(im->dest_fd, legacy, 2, 18) != 2)
                return write_error(im, errno ? errno : EIO);
        return 0;
}

/* ---- verification: S read through SQLite, compared with the copy ---- */

typedef struct Verifier {
        sqlite3_vfs vfs;
        sqlite3_vfs *base;
        char name[64];
        const uint8_t *copy;
        uint64_t copy_size;
        uint64_t logical_size; /* what the destination pager believes it wrote */
        uint32_t page_size;
        uint32_t n_page;
        uint32_t n_seen;
        uint8_t *seen; /* one bit per page */
        int64_t mismatch; /* first differing byte, or -1 */
        sqlite3 *dest;
        sqlite3_backup *backup;
} Verifier;

typedef struct VerifyFile {
        sqlite3_file base;
        Verifier *v;
} VerifyFile;

/* Page 1 header fields the backup API sets in its destination (file change counter and size
 * in pages, schema cookie, version-valid-for and library version) and the read/write format
 * versions, which the copy sets to rollback journal: not compared. */
static bool header_byte_skipped(uint64_t off) {
        return (off >= 18 && off < 20) || (off >= 24 && off < 32) || (off >= 40 && off < 44) ||
               (off >= 92 && off < 100);
}

static int vf_close(sqlite3_file *f) {
        return SQLITE_OK;
}

static int vf_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off) {
        Verifier *v = ((VerifyFile *) f)->v;
        uint64_t avail = v->logical_size < v->copy_size ? v->logical_size : v->copy_size;
        uint64_t n = (uint64_t) off >= avail ? 0 : avail - (uint64_t) off;
        if (n > (uint64_t) amt)
                n = (uint64_t) amt;
        memcpy(buf, v->copy + (n ? off : 0), n);
        memset((uint8_t *) buf + n, 0, (size_t) amt - n);
        return n == (uint64_t) amt ? SQLITE_OK : SQLITE_IOERR_SHORT_READ;
}

static int vf_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off) {
        Verifier *v = ((VerifyFile *) f)->v;
        const uint8_t *p = buf;
        uint64_t start = (uint64_t) off, end = start + (uint64_t) amt;
        if (end > v->copy_size) {
                v->mismatch = (int64_t) (v->copy_size > start ? v->copy_size : start);
                return SQLITE_IOERR_WRITE;
        }
        uint64_t i = start;
        for (; i < end && i < 100; i++)
                if (!header_byte_skipped(i) && p[i - start] != v->copy[i]) {
                        v->mismatch = (int64_t) i;
                        return SQLITE_IOERR_WRITE;
                }
        if (i < end && memcmp(p + (i - start), v->copy + i, end - i) != 0) {
                for (; p[i - start] == v->copy[i]; i++)
                        ;
                v->mismatch = (int64_t) i;
                return SQLITE_IOERR_WRITE;
        }
        for (uint64_t pg = (start + v->page_size - 1) / v->page_size; (pg + 1) * v->page_size <= end; pg++)
                if (pg < v->n_page && !(v->seen[pg / 8] & (1u << (pg % 8)))) {
                        v->seen[pg / 8] |= (uint8_t) (1u << (pg % 8));
                        v->n_seen++;
                }
        if (end > v->logical_size)
                v->logical_size = end;
        return SQLITE_OK;
}

static int vf_truncate(sqlite3_file *f, sqlite3_int64 size) {
        ((VerifyFile *) f)->v->logical_size = (uint64_t) size;
        return SQLITE_OK;
}

static int vf_sync(sqlite3_file *f, int flags) {
        return SQLITE_OK;
}

static int vf_file_size(sqlite3_file *f, sqlite3_int64 *size) {
        *size = (sqlite3_int64) ((VerifyFile *) f)->v->logical_size;
        return SQLITE_OK;
}

static int vf_lock(sqlite3_file *f, int level) {
        return SQLITE_OK;
}

static int vf_check_reserved(sqlite3_file *f, int *out) {
        *out = 0;
        return SQLITE_OK;
}

static int vf_file_control(sqlite3_file *f, int op, void *arg) {
        return SQLITE_NOTFOUND;
}

static int vf_sector_size(sqlite3_file *f) {
        return 4096;
}

static int vf_device_characteristics(sqlite3_file *f) {
        return 0;
}

static const sqlite3_io_methods verify_io = {
        .iVersion = 1,
        .xClose = vf_close,
        .xRead = vf_read,
        .xWrite = vf_write,
        .xTruncate = vf_truncate,
        .xSync = vf_sync,
        .xFileSize = vf_file_size,
        .xLock = vf_lock,
        .xUnlock = vf_lock,
        .xCheckReservedLock = vf_check_reserved,
        .xFileControl = vf_file_control,
        .xSectorSize = vf_sector_size,
        .xDeviceCharacteristics = vf_device_characteristics,
};

/* Only the main database file exists in this VFS: no journal (journal_mode=OFF), no temp. */
static int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags) {
        f->pMethods = NULL;
        if (!(flags & SQLITE_OPEN_MAIN_DB))
                return SQLITE_CANTOPEN;
        ((VerifyFile *) f)->v = vfs->pAppData;
        f->pMethods = &verify_io;
        if (out_flags)
                *out_flags = flags;
        return SQLITE_OK;
}

static int vfs_delete(sqlite3_vfs *vfs, const char *name, int sync_dir) {
        return SQLITE_OK;
}

static int vfs_access(sqlite3_vfs *vfs, const char *name, int flags, int *out) {
        *out = 0;
        return SQLITE_OK;
}

static int vfs_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out) {
        snprintf(out, (size_t) n, "%s", name);
        return SQLITE_OK;
}

static int vfs_randomness(sqlite3_vfs *vfs, int n, char *out) {
        sqlite3_vfs *base = ((Verifier *) vfs->pAppData)->base;
        return base->xRandomness(base, n, out);
}

static int vfs_sleep(sqlite3_vfs *vfs, int usec) {
        sqlite3_vfs *base = ((Verifier *) vfs->pAppData)->base;
        return base->xSleep(base, usec);
}

static int vfs_current_time(sqlite3_vfs *vfs, double *out) {
        sqlite3_vfs *base = ((Verifier *) vfs->pAppData)->base;
        return base->xCurrentTime(base, out);
}

static int vfs_last_error(sqlite3_vfs *vfs, int n, char *out) {
        return 0;
}

static void verifier_done(Verifier *v) {
        if (v->backup)
                (void) sqlite3_backup_finish(v->backup);
        sqlite3_close_v2(v->dest);
        if (v->vfs.zName)
                sqlite3_vfs_unregister(&v->vfs);
        if (v->copy && v->copy != MAP_FAILED)
                munmap((void *) v->copy, v->copy_size);
        free(v->seen);
}

/* Reads S through SQLite (the source's pager: database file, WAL, the read transaction still
 * open) into a destination that compares each page with the copy as it is written. */
static int verifier_open(Verifier *v, Image *im) {
        *v = (Verifier) {
                .base = sqlite3_vfs_find(NULL),
                .page_size = im->page_size,
                .n_page = im->n_page,
                .copy_size = im->size,
                .mismatch = -1,
        };
        if (!v->base)
                return fail(im, -EIO, "vérification : pas de VFS SQLite par défaut");
        v->copy = mmap(NULL, im->size, PROT_READ, MAP_SHARED, im->dest_fd, 0);
        if (v->copy == MAP_FAILED)
                return fail(im, -errno, "vérification : lecture de la copie : %s", strerror(errno));
        v->seen = calloc(im->n_page / 8 + 1, 1);
        if (!v->seen)
                return fail(im, -ENOMEM, "vérification : mémoire insuffisante");
        snprintf(v->name, sizeof v->name, "gazelle-verify-%p", (void *) v);
        v->vfs = (sqlite3_vfs) {
                .iVersion = 1,
                .szOsFile = sizeof(VerifyFile),
                .mxPathname = 256,
                .zName = v->name,
                .pAppData = v,
                .xOpen = vfs_open,
                .xDelete = vfs_delete,
                .xAccess = vfs_access,
                .xFullPathname = vfs_full_pathname,
                .xRandomness = vfs_randomness,
                .xSleep = vfs_sleep,
                .xCurrentTime = vfs_current_time,
                .xGetLastError = vfs_last_error,
        };
        if (sqlite3_vfs_register(&v->vfs, 0) != SQLITE_OK) {
                v->vfs.zName = NULL;
                return fail(im, -EIO, "vérification : enregistrement du VFS impossible");
        }
        /* A small cache: pages reach the comparison soon after they are read. */
        int rc = sqlite3_open_v2("copie", &v->dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, v->name);
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(v->dest, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=64",
                                  NULL, NULL, NULL);
        if (rc == SQLITE_OK)
                v->backup = sqlite3_backup_init(v->dest, "main", im->src, "main");
        if (!v->backup)
                return fail(im, -EIO, "vérification : %s", v->dest ? sqlite3_errmsg(v->dest) : sqlite3_errstr(rc));
        return 0;
}

static int verifier_result(Verifier *v, Image *im, int rc) {
        im->stats->verified = v->n_seen;
        if (v->mismatch >= 0)
                return fail(im, -ESTALE, "la copie diffère de l'instantané (page %lld, octet %lld)",
                            (long long) (v->mismatch / im->page_size + 1), (long long) v->mismatch);
        if (rc != SQLITE_OK && rc != SQLITE_DONE)
                return fail(im, -EIO, "vérification : %s", sqlite3_errmsg(v->dest));
        return 0;
}

/* Compares the next n pages of S (some of them once the destination's cache spills). */
static int verifier_step(Verifier *v, Image *im, int n) {
        return verifier_result(v, im, sqlite3_backup_step(v->backup, n));
}

/* The rest of S, then every page must have been compared and found equal. */
static int verifier_finish(Verifier *v, Image *im) {
        int rc;
        while ((rc = sqlite3_backup_step(v->backup, VERIFY_STEP_PAGES)) == SQLITE_OK)
                ;
        int frc = sqlite3_backup_finish(v->backup);
        v->backup = NULL;
        int r = verifier_result(v, im, rc == SQLITE_DONE ? frc : rc);
        if (r < 0)
                return r;
        uint32_t lock_page = im->size > PENDING_BYTE ? PENDING_BYTE / im->page_size : UINT32_MAX;
        uint32_t expected = im->n_page - (lock_page < im->n_page);
        if (v->n_seen != expected || v->logical_size != im->size)
                return fail(im, -ESTALE, "%u pages comparées sur %u, taille %llu au lieu de %llu", v->n_seen,
                            expected, (unsigned long long) v->logical_size, (unsigned long long) im->size);
        return 0;
}

/* ---- the whole copy ---- */

/* Chunk by chunk: the file's bytes by the kernel, S's frames of those pages on top, writeback
 * started, and the same pages of S read through SQLite and compared while the disk writes. */
static int copy_and_verify(Image *im, Verifier *v) {
        uint32_t chunk_pages = CHUNK_BYTES / im->page_size;
        uint64_t next_progress = PROGRESS_BYTES;
        for (uint32_t first = 1; first <= im->n_page; first += chunk_pages) {
                uint32_t end = first + chunk_pages > im->n_page + 1 ? im->n_page + 1 : first + chunk_pages;
                uint64_t start_byte = (uint64_t) (first - 1) * im->page_size, end_byte = (uint64_t) (end - 1) * im->page_size;
                int r = copy_range(im, start_byte, end_byte);
                if (r >= 0)
                        r = overlay_frames(im, first, end);
                if (r >= 0 && first == 1)
                        r = mark_rollback_journal(im);
                if (r < 0)
                        return r;
                writeback(im, end_byte);
                r = verifier_step(v, im, (int) (end - first));
                if (r < 0)
                        return r;
                if (end_byte >= next_progress) {
                        log_progress(&im->ctx->log, "Sauvegarde : %d %% (%llu/%llu Mo)", (int) (100 * end_byte / im->size),
                                     (unsigned long long) (end_byte / 1000000), (unsigned long long) (im->size / 1000000));
                        next_progress += PROGRESS_BYTES;
                }
                if (run_cancelled(im->ctx))
                        return fail(im, -EINTR, "interrompue");
        }
        return 0;
}

static int image_copy_pinned(Image *im, const char *dest_path) {
        int r = read_geometry(im);
        if (r < 0)
                return r;
        struct stat st;
        if (fstat(im->src_fd, &st) < 0)
                return fail(im, -errno, "base source : %s", strerror(errno));
        im->file_end = (uint64_t) st.st_size < im->size ? (uint64_t) st.st_size : im->size;
        im->kernel_copy = true;

        usec_t t = now_monotonic();
        r = collect_frames(im);
        if (r < 0)
                return r;
        im->dest_fd = open(dest_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (im->dest_fd < 0)
                return fail(im, -errno, "%s : %s", dest_path, strerror(errno));
        /* Room for the whole copy up front: a full disk fails here, and the file is contiguous. */
        if (fallocate(im->dest_fd, 0, 0, (off_t) im->size) < 0 &&
            (errno != EOPNOTSUPP || ftruncate(im->dest_fd, (off_t) im->size) < 0))
                return write_error(im, errno);

        _cleanup_(verifier_done) Verifier v = {};
        r = verifier_open(&v, im);
        if (r >= 0)
                r = copy_and_verify(im, &v);
        if (r < 0)
                return r;
        im->stats->copy_ms = (uint32_t) ((now_monotonic() - t) / USEC_PER_MSEC);
        t = now_monotonic();
        r = verifier_finish(&v, im);
        if (r < 0)
                return r;
        /* Frames are overwritten only after a restart, which changes the salts first. */
        WalIndexHeader now;
        uint32_t backfilled;
        for (int i = 0; i < 100 && !wal_index_read(im->shm, &now, &backfilled); i++)
                usleep(100);
        if (im->n_frames > 0 && memcmp(now.salt, im->snapshot.salt, sizeof now.salt) != 0)
                return -EAGAIN;
        im->stats->verify_ms = (uint32_t) ((now_monotonic() - t) / USEC_PER_MSEC);
        t = now_monotonic();
        if (fdatasync(im->dest_fd) < 0)
                return fail(im, -errno, "fsync : %s", strerror(errno));
        im->stats->sync_ms = (uint32_t) ((now_monotonic() - t) / USEC_PER_MSEC);
        return 0;
}

int backup_image_copy(RunContext *ctx, sqlite3 *src, const char *dest_path, ImageStats *stats, char *reason,
                      size_t reason_size) {
        Image im = {
                .ctx = ctx,
                .src = src,
                .src_fd = -1,
                .dest_fd = -1,
                .stats = stats,
                .reason = reason,
                .reason_size = reason_size,
        };
        *stats = (ImageStats) {};
        const char *path = sqlite3_db_filename(src, "main");
        if (isempty(path) || sqlite3_get_autocommit(src) == 0)
                return -EOPNOTSUPP;

        /* Fewer frames to lay over: copy what no reader needs any more into the file. Never
         * waits for a writer; a busy or read-only source simply skips it. */
        (void) sqlite3_wal_checkpoint_v2(src, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);

        void *shm = NULL;
        if (sqlite3_file_control(src, "main", SQLITE_FCNTL_FILE_POINTER, &im.db_file) != SQLITE_OK || !im.db_file ||
            !im.db_file->pMethods || im.db_file->pMethods->iVersion < 2 ||
            im.db_file->pMethods->xShmMap(im.db_file, 0, WAL_INDEX_REGION_BYTES, 0, (void volatile **) &shm) != SQLITE_OK ||
            !shm)
                return -EOPNOTSUPP;
        im.shm = shm;
        im.src_fd = find_sqlite_fd(path);
        if (im.src_fd < 0)
                return -EOPNOTSUPP;

        /* The verification reads S through SQLite: memory-mapped, it costs a memcpy per page. */
        int64_t mmap_before = 0;
        (void) query_int64(src, "PRAGMA mmap_size", &mmap_before);
        _cleanup_free_ char *mmap_on = xasprintf("PRAGMA mmap_size=%lld", SOURCE_MMAP_BYTES);
        (void) sqlite3_exec(src, mmap_on, NULL, NULL, NULL);

        int r = pin_snapshot(&im);
        if (r >= 0) {
                r = image_copy_pinned(&im, dest_path);
                (void) sqlite3_exec(src, "COMMIT", NULL, NULL, NULL);
        }
        _cleanup_free_ char *mmap_off = xasprintf("PRAGMA mmap_size=%lld", (long long) mmap_before);
        (void) sqlite3_exec(src, mmap_off, NULL, NULL, NULL);
        if (im.dest_fd >= 0)
                close(im.dest_fd);
        free(im.frames);
        if (r == -ESTALE)
                log_run(&ctx->log, LOG_WARNING, "Sauvegarde : vérification de la copie par image échouée (%s) ; "
                        "nouvelle copie par l'API de sauvegarde de SQLite", reason);
        if (r == -EAGAIN || r == -ESTALE)
                r = -EOPNOTSUPP; /* the WAL did not hold S after all, or the image is not S: the backup API will */
        if (r < 0)
                (void) unlink(dest_path);
        return r;
}
