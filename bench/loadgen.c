// Open-loop HTTP/1.1 load generator: holds a fixed request rate on a timetable and measures each
// response from the time it was *scheduled* to be sent, so a stalled proxy is charged for every
// request it held up (coordinated-omission corrected, as wrk2 does; plain wrk is closed-loop).
//
// Why C: at 5000 req/s a Node.js generator's own event-loop jitter is of the same order as the
// latency a good proxy adds, and it competes for the same core as the upstream. This one uses
// epoll + a timerfd armed at the next scheduled send, one request in flight per keep-alive
// connection, and reports its own send lag so its overhead can be checked against `direct`.
//
// Usage: loadgen -p PORT -r RATE -d SECONDS [-w WARMUP_SECONDS] [-c CONNECTIONS]
//                [-H HOST_HEADER] [-u PATH] [-a 127.0.0.1]
// Prints one JSON object on stdout. Bounded: it stops scheduling after warmup + duration and
// gives outstanding requests at most 2 s more (those count as timeouts, at their lower bound).

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1024
#define BUF_SIZE 65536
#define DRAIN_NS 2000000000LL
#define ON_TIME_SLACK_NS 100000000LL

enum body_mode { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_UNTIL_CLOSE };
enum chunk_state { CH_SIZE, CH_DATA, CH_DATA_CRLF, CH_TRAILER };

struct conn {
  int fd;
  int busy;
  long req;            // index of the request in flight
  char buf[BUF_SIZE];  // response head being read (the body is counted, not kept)
  size_t len;
  int head_done;
  int status;
  int close_after;
  enum body_mode mode;
  long long remaining;  // BODY_LENGTH: bytes still due; CH_DATA: bytes of the chunk still due
  enum chunk_state cs;
  long long chunk_size;
  int size_ext;         // CH_SIZE: past the hex digits (a chunk extension follows)
  int line_empty;       // CH_TRAILER: nothing but CR seen on this line yet
};

static struct sockaddr_in addr;
static char request[2048];
static size_t request_len;
static struct conn conns[MAX_CONNS];
static int nconns = 32;
static int idle[MAX_CONNS];  // FIFO of idle connection indexes, so every connection carries traffic
static int idle_head, idle_count;
static int epfd;

static long long t0, interval_ns;
static long total, warm;  // requests in the whole timetable; those before `warm` are not recorded
static double *lat_us;    // per recorded request; -1 until completed
static double *lag_us;    // send time minus scheduled time
static long completed, errors, non2xx, reconnects;
static long on_time;      // recorded requests answered by the end of the timetable (+100 ms)

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long due(long i) { return t0 + i * interval_ns; }

static void idle_push(int c) {
  idle[(idle_head + idle_count) % MAX_CONNS] = c;
  idle_count++;
}

static int idle_pop(void) {
  int c = idle[idle_head];
  idle_head = (idle_head + 1) % MAX_CONNS;
  idle_count--;
  return c;
}

static int open_conn(int i) {
  struct conn *c = &conns[i];
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  if (c->fd < 0) return -1;
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // Loopback connects complete at once; connecting blocking keeps the state machine simple.
  if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    close(c->fd);
    c->fd = -1;
    return -1;
  }
  fcntl(c->fd, F_SETFL, O_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)i};
  epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
  c->busy = 0;
  c->len = 0;
  c->head_done = 0;
  return 0;
}

static void record(long req, long long when) {
  if (req < warm) return;
  lat_us[req - warm] = (double)(when - due(req)) / 1000.0;
  if (when <= due(total) + ON_TIME_SLACK_NS) on_time++;
}

static void reset_response(struct conn *c) {
  c->len = 0;
  c->head_done = 0;
  c->status = 0;
  c->close_after = 0;
  c->mode = BODY_NONE;
  c->remaining = 0;
  c->cs = CH_SIZE;
  c->chunk_size = 0;
  c->size_ext = 0;
  c->line_empty = 1;
}

static void drop_conn(int i, int failed) {
  struct conn *c = &conns[i];
  if (c->fd >= 0) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
  }
  c->fd = -1;
  if (c->busy && failed) {
    errors++;
    record(c->req, now_ns());
    completed++;
  }
  c->busy = 0;
  reset_response(c);
  reconnects++;
  if (open_conn(i) == 0) idle_push(i);
}

static int send_on(int i, long req, long long now) {
  struct conn *c = &conns[i];
  reset_response(c);
  c->busy = 1;
  c->req = req;
  if (req >= warm) lag_us[req - warm] = (double)(now - due(req)) / 1000.0;
  ssize_t n = write(c->fd, request, request_len);
  if (n != (ssize_t)request_len) {
    drop_conn(i, 1);
    return -1;
  }
  return 0;
}

/** Parses the head once it is complete: status, Content-Length / chunked, Connection: close. */
static int parse_head(struct conn *c, size_t *body_start) {
  char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
  if (!end) return 0;
  *body_start = (size_t)(end - c->buf) + 4;
  *end = 0;
  c->status = (c->len > 12) ? atoi(c->buf + 9) : 0;
  c->mode = BODY_UNTIL_CLOSE;
  for (char *line = strstr(c->buf, "\r\n"); line; line = strstr(line, "\r\n")) {
    line += 2;
    if (strncasecmp(line, "content-length:", 15) == 0) {
      c->mode = BODY_LENGTH;
      c->remaining = atoll(line + 15);
    } else if (strncasecmp(line, "transfer-encoding:", 18) == 0 && strcasestr(line, "chunked")) {
      c->mode = BODY_CHUNKED;
    } else if (strncasecmp(line, "connection:", 11) == 0 && strcasestr(line, "close")) {
      c->close_after = 1;
    }
  }
  if (c->status == 204 || c->status == 304) c->mode = BODY_NONE;
  c->head_done = 1;
  return 1;
}

/** Consumes body bytes; returns 1 when the response is complete. */
static int consume_body(struct conn *c, const char *p, size_t n) {
  if (c->mode == BODY_NONE) return 1;
  if (c->mode == BODY_LENGTH) {
    c->remaining -= (long long)n;
    return c->remaining <= 0;
  }
  if (c->mode == BODY_UNTIL_CLOSE) return 0;
  for (size_t k = 0; k < n; k++) {
    char ch = p[k];
    switch (c->cs) {
      case CH_SIZE:
        if (ch == '\n') {
          if (c->chunk_size == 0) {
            c->cs = CH_TRAILER;
            c->line_empty = 1;
          } else {
            c->cs = CH_DATA;
            c->remaining = c->chunk_size;
          }
        } else if (ch != '\r' && !c->size_ext) {
          int v = (ch >= '0' && ch <= '9') ? ch - '0' : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10 : (ch >= 'A' && ch <= 'F') ? ch - 'A' + 10 : -1;
          if (v < 0) c->size_ext = 1;  // `;ext` after the size: ignore the rest of the line
          else c->chunk_size = c->chunk_size * 16 + v;
        }
        break;
      case CH_DATA: {
        size_t take = n - k;
        if ((long long)take > c->remaining) take = (size_t)c->remaining;
        c->remaining -= (long long)take;
        k += take - 1;
        if (c->remaining == 0) c->cs = CH_DATA_CRLF;
        break;
      }
      case CH_DATA_CRLF:
        if (ch == '\n') {
          c->cs = CH_SIZE;
          c->chunk_size = 0;
          c->size_ext = 0;
        }
        break;
      case CH_TRAILER:
        if (ch == '\n') {
          if (c->line_empty) return 1;
          c->line_empty = 1;
        } else if (ch != '\r') {
          c->line_empty = 0;
        }
        break;
    }
  }
  return 0;
}

static void on_readable(int i) {
  struct conn *c = &conns[i];
  for (;;) {
    char tmp[BUF_SIZE];
    ssize_t n = read(c->fd, tmp, sizeof tmp);
    if (n == 0) {  // peer closed
      if (c->busy && c->head_done && c->mode == BODY_UNTIL_CLOSE) {
        long long t = now_ns();
        record(c->req, t);
        completed++;
        if (c->status < 200 || c->status > 299) non2xx++;
        c->busy = 0;
      }
      drop_conn(i, 1);
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      drop_conn(i, 1);
      return;
    }
    if (!c->busy) {  // bytes nobody asked for: the connection is unusable
      drop_conn(i, 0);
      return;
    }
    const char *body = tmp;
    size_t body_len = (size_t)n;
    if (!c->head_done) {
      size_t room = BUF_SIZE - 1 - c->len;
      size_t take = (size_t)n < room ? (size_t)n : room;
      memcpy(c->buf + c->len, tmp, take);
      size_t before = c->len;
      c->len += take;
      size_t body_start;
      if (!parse_head(c, &body_start)) {
        if (c->len >= BUF_SIZE - 1) drop_conn(i, 1);  // a head larger than 64 KiB: give up
        continue;
      }
      body = tmp + (body_start - before);
      body_len = (size_t)n - (body_start - before);
    }
    if (consume_body(c, body, body_len)) {
      long long t = now_ns();
      record(c->req, t);
      completed++;
      if (c->status < 200 || c->status > 299) non2xx++;
      c->busy = 0;
      if (c->close_after) drop_conn(i, 0);
      else idle_push(i);
      return;
    }
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double pct(const double *sorted, long n, double p) {
  if (n == 0) return 0;
  long k = (long)((p / 100.0) * (double)n + 0.5) - 1;  // nearest-rank
  if (k < 0) k = 0;
  if (k >= n) k = n - 1;
  return sorted[k];
}

static void usage(void) {
  fprintf(stderr, "usage: loadgen -p PORT -r RATE -d SECONDS [-w WARMUP] [-c CONNECTIONS] [-H HOST] [-u PATH] [-a ADDR]\n");
  exit(2);
}

int main(int argc, char **argv) {
  int port = 0;
  double rate = 0, duration = 0, warmup = 0;
  const char *host = "bench-upstream", *path = "/", *address = "127.0.0.1";
  int opt;
  while ((opt = getopt(argc, argv, "p:r:d:w:c:H:u:a:")) != -1) {
    switch (opt) {
      case 'p': port = atoi(optarg); break;
      case 'r': rate = atof(optarg); break;
      case 'd': duration = atof(optarg); break;
      case 'w': warmup = atof(optarg); break;
      case 'c': nconns = atoi(optarg); break;
      case 'H': host = optarg; break;
      case 'u': path = optarg; break;
      case 'a': address = optarg; break;
      default: usage();
    }
  }
  if (port <= 0 || rate <= 0 || duration <= 0 || nconns <= 0 || nconns > MAX_CONNS) usage();
  // Only loopback targets: this tool is for benchmarking processes on this machine.
  if (strncmp(address, "127.", 4) != 0) {
    fprintf(stderr, "loadgen: only loopback addresses (127.0.0.0/8) are allowed\n");
    return 2;
  }
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, address, &addr.sin_addr);
  request_len = (size_t)snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: weft-loadgen\r\nAccept: */*\r\n\r\n", path, host);

  interval_ns = (long long)(1e9 / rate);
  warm = (long)(rate * warmup);
  total = warm + (long)(rate * duration);
  long recorded = total - warm;
  lat_us = malloc(sizeof(double) * (size_t)recorded);
  lag_us = malloc(sizeof(double) * (size_t)recorded);
  for (long k = 0; k < recorded; k++) lat_us[k] = -1, lag_us[k] = 0;

  // The default 50 us timer slack would shift every scheduled send by up to that much.
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  epfd = epoll_create1(0);
  int connected = 0;
  for (int i = 0; i < nconns; i++) {
    conns[i].fd = -1;
    if (open_conn(i) == 0) {
      idle_push(i);
      connected++;
    }
  }
  if (connected == 0) {
    fprintf(stderr, "loadgen: cannot connect to %s:%d\n", address, port);
    return 1;
  }
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  struct epoll_event tev = {.events = EPOLLIN, .data.u32 = 0xFFFFFFFFu};
  epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &tev);

  t0 = now_ns() + 5000000LL;  // 5 ms from now
  long long hard_end = due(total) + DRAIN_NS;
  long next = 0;
  long inflight = 0;
  struct epoll_event events[256];
  for (;;) {
    long long now = now_ns();
    while (next < total && due(next) <= now && idle_count > 0) {
      int c = idle_pop();
      if (send_on(c, next, now) == 0) inflight++;
      next++;
      now = now_ns();
    }
    // Count what is in flight from the connections themselves (drops settle their own request).
    inflight = 0;
    for (int i = 0; i < nconns; i++) inflight += conns[i].busy;
    if (next >= total && inflight == 0) break;
    if (now >= hard_end) break;
    int timeout_ms = (int)((hard_end - now) / 1000000LL) + 1;
    if (next < total && idle_count > 0) {
      struct itimerspec its = {0};
      long long d = due(next);
      its.it_value.tv_sec = d / 1000000000LL;
      its.it_value.tv_nsec = d % 1000000000LL;
      timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
    }
    int n = epoll_wait(epfd, events, 256, timeout_ms);
    for (int k = 0; k < n; k++) {
      uint32_t id = events[k].data.u32;
      if (id == 0xFFFFFFFFu) {
        uint64_t exp;
        while (read(tfd, &exp, sizeof exp) > 0) {}
        continue;
      }
      if (conns[id].fd >= 0) on_readable((int)id);
    }
  }
  long long end = now_ns();

  // Requests never answered (or never sent) count as timeouts at their lower bound.
  long timeouts = 0;
  for (long k = 0; k < recorded; k++)
    if (lat_us[k] < 0) {
      timeouts++;
      lat_us[k] = (double)(end - due(warm + k)) / 1000.0;
    }
  double sum = 0;
  for (long k = 0; k < recorded; k++) sum += lat_us[k];
  qsort(lat_us, (size_t)recorded, sizeof(double), cmp_double);
  qsort(lag_us, (size_t)recorded, sizeof(double), cmp_double);
  double measured_s = (double)(due(total) - due(warm)) / 1e9;
  printf("{\"rate\":%.0f,\"durationS\":%.3f,\"connections\":%d,\"requests\":%ld,\"completedAll\":%ld,\"errors\":%ld,\"non2xx\":%ld,\"timeouts\":%ld,\"reconnects\":%ld,",
         rate, duration, nconns, recorded, completed, errors, non2xx, timeouts, reconnects);
  // Answers that came in while the timetable ran: a path that cannot keep the rate falls short.
  printf("\"achievedRps\":%.1f,", (double)on_time / measured_s);
  printf("\"latencyUs\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p99.9\":%.1f,\"p99.99\":%.1f,\"max\":%.1f,\"mean\":%.1f},",
         pct(lat_us, recorded, 50), pct(lat_us, recorded, 90), pct(lat_us, recorded, 99), pct(lat_us, recorded, 99.9),
         pct(lat_us, recorded, 99.99), recorded ? lat_us[recorded - 1] : 0, recorded ? sum / (double)recorded : 0);
  printf("\"sendLagUs\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}}\n", pct(lag_us, recorded, 50), pct(lag_us, recorded, 99),
         recorded ? lag_us[recorded - 1] : 0);
  return 0;
}
