"""redis-py's common calls against kvstore-server (KVSTORE_PORT): what an
application written for Redis does first. Each check raises on a wrong
answer, and the process then exits non-zero."""
import os
import threading

import redis

port = int(os.environ["KVSTORE_PORT"])
r = redis.Redis(port=port)
assert r.ping()
r.flushall()

assert r.set("greeting", "hello")
assert r.get("greeting") == b"hello"
assert r.get("absent") is None
assert r.set("greeting", "new", get=True) == b"hello"
assert r.set("greeting", "x", nx=True) is None
assert r.set("counter", 10, ex=100)
assert 90 < r.ttl("counter") <= 100
assert r.incr("counter", 5) == 15
assert 90 < r.ttl("counter") <= 100  # INCR keeps the deadline
assert r.incrbyfloat("float", 2.5) == 2.5
assert r.append("greeting", "er") == 5
assert r.getrange("greeting", 0, 2) == b"new"
assert r.mset({"a": 1, "b": 2})
assert r.mget("a", "b", "absent") == [b"1", b"2", None]
assert r.getex("a", px=50000) == b"1"
assert r.pttl("a") > 40000
assert r.getdel("b") == b"2" and not r.exists("b")
assert r.expire("a", 100, gt=True)  # redis-py 4.2+: EXPIRE's conditions
assert r.persist("a") and r.ttl("a") == -1
assert r.rename("a", "renamed") and r.get("renamed") == b"1"
assert r.copy("renamed", "copied") and r.get("copied") == b"1"
assert r.type("copied") == b"string"
assert r.strlen("greeting") == 5
assert r.setbit("bits", 7, 1) == 0 and r.getbit("bits", 7) == 1
assert r.delete("renamed", "copied", "absent") == 2
binary = bytes(range(256))
assert r.set(b"bin\x00key", binary) and r.get(b"bin\x00key") == binary

# pipeline() is a MULTI/EXEC transaction by default.
with r.pipeline() as pipe:
    results = pipe.set("p", 1).incr("p").get("p").execute()
assert results == [True, 2, b"2"], results
with r.pipeline(transaction=False) as pipe:
    assert pipe.set("q", "v").get("q").execute() == [True, b"v"]

# The optimistic-locking recipe: WATCH, read, MULTI, write, EXEC, retried
# when another client changed the key in between.
r.set("balance", 100)
def withdraw(pipe):
    balance = int(pipe.get("balance"))
    pipe.multi()
    pipe.set("balance", balance - 10)
threads = [threading.Thread(target=lambda: [r.transaction(withdraw, "balance") for _ in range(20)])
           for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert r.get("balance") == b"-700", r.get("balance")  # 100 - 80 withdrawals of 10, none lost

# scan_iter follows SCAN's cursor: every key once.
for i in range(500):
    r.set(f"scan:{i}", i)
seen = list(r.scan_iter(match="scan:*", count=50))
assert len(seen) == 500 and len(set(seen)) == 500, len(seen)
assert sorted(r.keys("scan:1?")) == sorted(f"scan:{i}".encode() for i in range(10, 20))

# Databases, connection and server calls.
other = redis.Redis(port=port, db=3)
assert other.set("in-three", "v") and r.get("in-three") is None and other.dbsize() == 1
assert r.move("greeting", 3) and other.get("greeting") == b"newer"
assert r.client_setname("redis-py") and r.client_getname() == "redis-py"
assert any(c.get("name") == "redis-py" for c in r.client_list())
assert r.info("server")["redis_version"]
assert "maxclients" in r.config_get("maxclients")
assert len(r.time()) == 2
assert r.dbsize() > 500
assert r.flushdb() and r.dbsize() == 0
assert other.dbsize() == 2
print("redis-py", redis.__version__, "calls answered as Redis answers them")
