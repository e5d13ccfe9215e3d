/* Closed-loop load on a command server at C speed (compiled by loadgen.py when a C
 * compiler is at hand).
 *
 * usage: loadgen HOST PORT MESSAGE CLIENTS REQUESTS_PER_CLIENT TIMEOUT_MS MAX_SECONDS MODE
 *   MODE oneshot: connect, send the message, read until the server closes, close
 *   MODE framed:  one connection per client, "LABCOMM/1 <n>\n<message>" each time
 *
 * Prints "seconds <s> timeouts <n>" then one latency in nanoseconds per line.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in address;
static const char *message;
static size_t message_length;
static char framed_request[70000];
static size_t framed_length;
static int per_client, timeout_ms, framed;
static double max_seconds;
static pthread_barrier_t barrier;

typedef struct {
    long long *latencies;
    int done, timeouts;
} Client;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int open_connection(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *data, size_t length) {
    while (length > 0) {
        ssize_t sent = send(fd, data, length, MSG_NOSIGNAL);
        if (sent <= 0) return -1;
        data += sent;
        length -= (size_t)sent;
    }
    return 0;
}

static int one_shot(void) {
    char buffer[65536];
    int fd = open_connection();
    if (fd < 0) return -1;
    int ok = send_all(fd, message, message_length);
    ssize_t got;
    while (ok == 0 && (got = recv(fd, buffer, sizeof buffer, 0)) != 0) {
        if (got < 0) ok = -1;
    }
    close(fd);
    return ok;
}

/* One framed exchange on fd; leftover bytes of the next reply never occur (closed loop). */
static int framed_exchange(int fd) {
    char buffer[65536];
    size_t have = 0;
    if (send_all(fd, framed_request, framed_length) < 0) return -1;
    for (;;) {
        ssize_t got = recv(fd, buffer + have, sizeof buffer - have, 0);
        if (got <= 0) return -1;
        have += (size_t)got;
        char *newline = memchr(buffer, '\n', have);
        if (newline == NULL) continue;
        size_t length = strtoul(buffer + 10, NULL, 10); /* after "LABCOMM/1 " */
        size_t total = (size_t)(newline - buffer) + 1 + length;
        if (have >= total) return 0;
        if (total > sizeof buffer) return -1;
    }
}

static void *run_client(void *arg) {
    Client *client = arg;
    int fd = framed ? open_connection() : -1;
    pthread_barrier_wait(&barrier);
    double deadline = now() + max_seconds;
    for (int i = 0; i < per_client; i++) {
        double start = now();
        if (start > deadline) break;
        int ok = framed ? (fd >= 0 ? framed_exchange(fd) : -1) : one_shot();
        if (ok < 0) {
            client->timeouts++;
            continue;
        }
        client->latencies[client->done++] = (long long)((now() - start) * 1e9);
    }
    if (fd >= 0) close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr, "usage: %s HOST PORT MESSAGE CLIENTS PER_CLIENT TIMEOUT_MS MAX_SECONDS "
                        "oneshot|framed\n", argv[0]);
        return 2;
    }
    address.sin_family = AF_INET;
    address.sin_port = htons((unsigned short)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &address.sin_addr) != 1) {
        fprintf(stderr, "not an IPv4 address: %s\n", argv[1]);
        return 2;
    }
    message = argv[3];
    message_length = strlen(message);
    int clients = atoi(argv[4]);
    per_client = atoi(argv[5]);
    timeout_ms = atoi(argv[6]);
    max_seconds = atof(argv[7]);
    framed = strcmp(argv[8], "framed") == 0;
    framed_length = (size_t)snprintf(framed_request, sizeof framed_request, "LABCOMM/1 %zu\n%s",
                                     message_length, message);
    Client *all = calloc((size_t)clients, sizeof *all);
    pthread_t *threads = calloc((size_t)clients, sizeof *threads);
    pthread_barrier_init(&barrier, NULL, (unsigned)clients + 1);
    for (int c = 0; c < clients; c++) {
        all[c].latencies = calloc((size_t)per_client, sizeof(long long));
        pthread_create(&threads[c], NULL, run_client, &all[c]);
    }
    pthread_barrier_wait(&barrier);
    double start = now();
    int timeouts = 0;
    for (int c = 0; c < clients; c++) {
        pthread_join(threads[c], NULL);
        timeouts += all[c].timeouts;
    }
    printf("seconds %.9f timeouts %d\n", now() - start, timeouts);
    for (int c = 0; c < clients; c++)
        for (int i = 0; i < all[c].done; i++) printf("%lld\n", all[c].latencies[i]);
    return 0;
}
