// ApplyPipeline: recovery's hand-over of decoded changes to a second thread.
#include "catch.hpp"

#include <kvstore/detail/apply_pipeline.hpp>

#include <cstddef>
#include <functional>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <vector>

using kvstore::detail::ApplyPipeline;

namespace {

struct Change {
    std::size_t sequence = 0;
};

// Records the order changes were applied in and the threads that did it.
struct Applied {
    std::vector<std::size_t> sequence;
    std::vector<std::thread::id> threads;
    std::size_t throw_at = static_cast<std::size_t>(-1);

    std::function<void(Change*, Change*)> function() {
        return [this](Change* first, Change* last) {
            threads.push_back(std::this_thread::get_id());
            for (Change* change = first; change != last; ++change) {
                if (change->sequence == throw_at) throw std::runtime_error("apply failed");
                sequence.push_back(change->sequence);
            }
        };
    }
};

using Pipeline = ApplyPipeline<Change, std::function<void(Change*, Change*)>>;

std::vector<std::size_t> iota(std::size_t count) {
    std::vector<std::size_t> numbers(count);
    std::iota(numbers.begin(), numbers.end(), std::size_t{0});
    return numbers;
}

}  // namespace

TEST_CASE("Changes over many batches are applied once each, in order, off the calling thread", "[pipeline]") {
    const std::size_t count = GENERATE(std::size_t{0}, std::size_t{1}, Pipeline::kBatchSize, Pipeline::kBatchSize + 1,
                                       Pipeline::kBatchSize * Pipeline::kBatches * 7 + 123);
    CAPTURE(count);
    Applied applied;
    {
        Pipeline pipeline(applied.function());
        for (std::size_t i = 0; i < count; ++i) pipeline.next().sequence = i;
        pipeline.finish();
    }
    CHECK(applied.sequence == iota(count));
    const bool threaded = count > Pipeline::kBatchSize;
    for (const std::thread::id thread : applied.threads) CHECK((thread != std::this_thread::get_id()) == threaded);
}

TEST_CASE("A slot comes back with what the change before it in that slot left", "[pipeline]") {
    // Slots are reused so that string buffers are too; a caller overwrites
    // every field it uses, and this is what makes that necessary.
    std::vector<std::size_t> seen;
    std::function<void(Change*, Change*)> apply = [&](Change* first, Change* last) {
        for (Change* change = first; change != last; ++change) seen.push_back(change->sequence);
    };
    Pipeline pipeline(apply);
    std::size_t reused = 0;
    for (std::size_t i = 0; i < Pipeline::kBatchSize * 5; ++i) {
        Change& change = pipeline.next();
        if (i >= Pipeline::kBatchSize * Pipeline::kBatches && change.sequence != 0) ++reused;
        change.sequence = i + 1;
    }
    pipeline.finish();
    CHECK(seen.size() == Pipeline::kBatchSize * 5);
    CHECK(reused > 0);
}

TEST_CASE("What the applying thread throws is rethrown by finish, and nothing after it is applied", "[pipeline]") {
    Applied applied;
    applied.throw_at = Pipeline::kBatchSize * 2 + 17;
    Pipeline pipeline(applied.function());
    for (std::size_t i = 0; i < Pipeline::kBatchSize * 6; ++i) pipeline.next().sequence = i;
    CHECK_THROWS_WITH(pipeline.finish(), "apply failed");
    CHECK(applied.sequence == iota(applied.throw_at));
}

TEST_CASE("A pipeline dropped without finish stops its thread and applies no more", "[pipeline]") {
    Applied applied;
    {
        Pipeline pipeline(applied.function());
        for (std::size_t i = 0; i < Pipeline::kBatchSize * 10 + 5; ++i) pipeline.next().sequence = i;
    }
    // What was applied is a prefix, and the batch still being filled never is.
    CHECK(applied.sequence == iota(applied.sequence.size()));
    CHECK(applied.sequence.size() <= Pipeline::kBatchSize * 10);
}
