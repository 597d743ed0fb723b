// hiredis, the C client most Redis bindings build on, against kvstore-server
// (KVSTORE_PORT): plain and pipelined calls, binary values, MULTI/EXEC and a
// SCAN to its end. Exits non-zero, saying what differed, on a wrong answer.
#include <hiredis/hiredis.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

int failures = 0;

void expect(int ok, const char* what) {
    if (!ok) {
        fprintf(stderr, "FAILED: %s\n", what);
        ++failures;
    }
}

redisReply* run(redisContext* c, const char* format, ...) {
    va_list args;
    va_start(args, format);
    auto* reply = static_cast<redisReply*>(redisvCommand(c, format, args));
    va_end(args);
    if (reply == nullptr) {
        fprintf(stderr, "FAILED: no reply to '%s': %s\n", format, c->errstr);
        exit(1);
    }
    return reply;
}

bool is_status(redisReply* reply, const char* text) {
    return reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, text) == 0;
}

}  // namespace

int main() {
    const char* port = getenv("KVSTORE_PORT");
    if (port == nullptr) {
        fprintf(stderr, "KVSTORE_PORT is not set\n");
        return 2;
    }
    redisContext* c = redisConnect("127.0.0.1", atoi(port));
    if (c == nullptr || c->err) {
        fprintf(stderr, "cannot connect: %s\n", c ? c->errstr : "out of memory");
        return 1;
    }
    redisReply* reply = run(c, "FLUSHALL");
    expect(is_status(reply, "OK"), "FLUSHALL answers OK");
    freeReplyObject(reply);

    const char value[] = {'a', '\0', 'b', '\r', '\n', 'c'};
    reply = run(c, "SET %b %b", "bin", std::size_t{3}, value, sizeof value);
    expect(is_status(reply, "OK"), "SET of a binary value answers OK");
    freeReplyObject(reply);
    reply = run(c, "GET bin");
    expect(reply->type == REDIS_REPLY_STRING && reply->len == sizeof value && memcmp(reply->str, value, sizeof value) == 0,
           "GET returns the binary value whole");
    freeReplyObject(reply);
    reply = run(c, "GET absent");
    expect(reply->type == REDIS_REPLY_NIL, "GET of an absent key is nil");
    freeReplyObject(reply);

    /* A pipeline of 1000 INCRs, read back in order. */
    for (int i = 0; i < 1000; ++i) redisAppendCommand(c, "INCR counter");
    for (long long i = 1; i <= 1000; ++i) {
        if (redisGetReply(c, reinterpret_cast<void**>(&reply)) != REDIS_OK) {
            fprintf(stderr, "FAILED: pipelined reply %lld: %s\n", i, c->errstr);
            return 1;
        }
        if (reply->type != REDIS_REPLY_INTEGER || reply->integer != i) {
            expect(0, "pipelined INCRs answer 1, 2, 3, ... in order");
            freeReplyObject(reply);
            break;
        }
        freeReplyObject(reply);
    }

    freeReplyObject(run(c, "MULTI"));
    freeReplyObject(run(c, "SET t1 one"));
    freeReplyObject(run(c, "INCRBY counter 10"));
    reply = run(c, "EXEC");
    expect(reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 && is_status(reply->element[0], "OK") &&
               reply->element[1]->type == REDIS_REPLY_INTEGER && reply->element[1]->integer == 1010,
           "EXEC answers each queued command");
    freeReplyObject(reply);

    for (int i = 0; i < 300; ++i) freeReplyObject(run(c, "SET scan:%d v", i));
    long long cursor = 0, keys = 0;
    do {
        reply = run(c, "SCAN %lld MATCH scan:* COUNT 25", cursor);
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
            expect(0, "SCAN answers a cursor and keys");
            freeReplyObject(reply);
            break;
        }
        cursor = std::strtoll(reply->element[0]->str, nullptr, 10);
        keys += static_cast<long long>(reply->element[1]->elements);
        freeReplyObject(reply);
    } while (cursor != 0);
    expect(keys == 300, "SCAN followed to its end returns every key once");

    reply = run(c, "NOSUCH");
    expect(reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "ERR unknown command", 19) == 0,
           "an unknown command is an error reply");
    freeReplyObject(reply);
    redisFree(c);
    if (failures == 0) printf("hiredis calls answered as Redis answers them\n");
    return failures == 0 ? 0 : 1;
}
