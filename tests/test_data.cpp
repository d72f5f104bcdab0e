#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>

#include "bistro/core/compression.hpp"
#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"
#include "bistro/core/rng.hpp"
#include "bistro/data/batches.hpp"
#include "bistro/data/corpus.hpp"
#include "bistro/data/local_dataset.hpp"
#include "bistro/data/mc_tasks.hpp"
#include "bistro/data/pages.hpp"
#include "test_util.hpp"

namespace bistro {
namespace {
namespace fs = std::filesystem;

struct TempDir : test::ScratchDir {
  TempDir() : test::ScratchDir("data") {}
};

TEST(Utf8, AcceptsValidAndRejectsMalformed) {
  EXPECT_TRUE(valid_utf8("plain ascii"));
  EXPECT_TRUE(valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(valid_utf8("\xc3"));              // truncated
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(valid_utf8("\xff"));
}

TEST(Compression, RoundTripsAndNamesCorruption) {
  std::string text;
  for (int i = 0; i < 5000; ++i) text += "line " + std::to_string(i) + "\n";
  EXPECT_EQ(gunzip(gzip(text), "x.gz"), text);
  EXPECT_EQ(unzstd(zstd(text), "x.zst"), text);
  EXPECT_EQ(gunzip(gzip("a") + gzip("b"), "multi.gz"), "ab");  // concatenated members
  auto gz = gzip(text);
  EXPECT_THROW(gunzip(gz.substr(0, gz.size() / 2), "half.gz"), Error);
  auto z = zstd(text);
  try {
    unzstd(z.substr(0, z.size() / 2), "half.zst");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("half.zst: zstd"), std::string::npos) << e.what();
  }
  EXPECT_THROW(gunzip("not gzip at all", "bad.gz"), Error);
}

TEST(LocalDataset, ParsesJsonlCountingEverySkip) {
  SkipCounts skips;
  const auto docs = parse_jsonl(
      "{\"text\": \"first\"}\n"
      "not json\n"
      "{\"title\": \"no text\"}\n"
      "{\"text\": 5}\n"
      "\n"
      "{\"text\": \"   \"}\n"
      "{\"text\": \"bad \xff utf8\"}\n"
      "{\"text\": \"second\", \"extra\": 1}",
      skips);
  EXPECT_EQ(docs, (std::vector<std::string>{"first", "second"}));
  EXPECT_EQ(skips.bad_json, 1u);
  EXPECT_EQ(skips.no_text, 2u);
  EXPECT_EQ(skips.empty, 1u);
  EXPECT_EQ(skips.bad_utf8, 1u);
}

TEST(LocalDataset, ParsesTextByParagraph) {
  SkipCounts skips;
  EXPECT_EQ(parse_text("one\nstill one\n\n\n\ntwo\n\nthree", skips),
            (std::vector<std::string>{"one\nstill one", "two", "three"}));
  EXPECT_EQ(skips.total(), 0u);
}

TEST(LocalDataset, ReadsEveryFormatAsConfigs) {
  TempDir d;
  write_file_atomic(d.path / "a.jsonl", "{\"text\":\"a0\"}\n{\"text\":\"a1\"}\n");
  write_file_atomic(d.path / "b.jsonl.gz", gzip("{\"text\":\"b0\"}\n"));
  write_file_atomic(d.path / "c.txt.zst", zstd("c0\n\nc1\n\nc2"));
  write_file_atomic(d.path / "empty.jsonl", "");
  write_file_atomic(d.path / "notes.md", "ignored");
  LocalDataset ds(d.path);
  EXPECT_EQ(ds.configs(), (std::vector<ConfigInfo>{{"a", 2}, {"b", 1}, {"c", 3}, {"empty", 0}}));
  EXPECT_EQ(ds.rows("c", 1, 100), (std::vector<std::string>{"c1", "c2"}));
  EXPECT_THROW(ds.rows("c", 3, 1), Error);
  EXPECT_THROW(ds.rows("zzz", 0, 1), Error);
}

TEST(LocalDataset, NamesBadDirectoriesAndFiles) {
  TempDir d;
  EXPECT_THROW(LocalDataset(d.path / "missing"), Error);
  EXPECT_THROW(LocalDataset{d.path}, Error);  // no data files
  write_file_atomic(d.path / "x.jsonl.gz", "this is not gzip");
  LocalDataset ds(d.path);
  try {
    ds.configs();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x.jsonl.gz: gzip"), std::string::npos) << e.what();
  }
}

std::vector<ConfigInfo> some_configs() {
  return {{"a", 1000}, {"b", 50}, {"c", 5000}, {"d", 100}};
}

TEST(Pages, AreAPureFunctionOfTheKey) {
  const auto c = some_configs();
  EXPECT_EQ(pages(local_pages_key(7, 3), 5, c), pages(local_pages_key(7, 3), 5, c));
  EXPECT_NE(pages(local_pages_key(7, 3), 5, c), pages(local_pages_key(7, 4), 5, c));
  EXPECT_NE(pages(local_pages_key(7, 3), 5, c), pages(local_pages_key(8, 3), 5, c));
  const uint8_t h1[32] = {1}, h2[32] = {2};
  EXPECT_NE(global_pages_key(7, h1), global_pages_key(7, h2));
}

// Pinned (docs/protocol.md): a change here moves every miner's pages.
TEST(Pages, PinnedVector) {
  const auto p = pages(local_pages_key(100, 1), 3, some_configs());
  ASSERT_EQ(p.size(), 3u);
  // From tests/reference/rng_spec.py, an independent transcription of the specification.
  std::vector<Page> expected = {{"a", 682}, {"c", 769}, {"c", 2907}};
  EXPECT_EQ(p, expected);
}

TEST(Pages, StayInRangeAndSkipShortConfigs) {
  const auto c = some_configs();
  std::map<std::string, int> hits;
  for (uint64_t w = 0; w < 2000; ++w) {
    for (const auto& p : pages(local_pages_key(w, 0), 3, c)) {
      ++hits[p.config];
      const auto& info =
          *std::find_if(c.begin(), c.end(), [&](auto& x) { return x.name == p.config; });
      EXPECT_LE(p.offset + kPageRows, info.num_rows);
    }
  }
  EXPECT_EQ(hits.count("b"), 0u);  // 50 rows: shorter than a page
  EXPECT_GT(hits["d"], 0);         // one start among 5,803: rarely drawn
  EXPECT_LT(hits["d"], 20);
  // Starts are uniform: c has 4901 of 5803 starts.
  EXPECT_NEAR(hits["c"] / 6000.0, 4901.0 / 5803.0, 0.03);
  EXPECT_THROW(pages(1, 3, {{"tiny", 10}}), Error);
}

TEST(Pages, ConsecutiveWindowsAreIndependent) {
  // BISTRO's flaw: window w+1 repeated 2 of window w's 3 pages. Count overlaps over many windows.
  const std::vector<ConfigInfo> c = {{"big", 1'000'000}};
  int shared = 0;
  for (uint64_t w = 0; w < 1000; ++w) {
    const auto a = pages(local_pages_key(w, 5), 3, c), b = pages(local_pages_key(w + 1, 5), 3, c);
    for (const auto& p : a) {
      for (const auto& q : b) {
        if (p.offset / 100 == q.offset / 100) ++shared;
      }
    }
  }
  EXPECT_LT(shared, 5);
}

TEST(Corpus, SplitsGcideEntries) {
  const std::string dict =
      "00-database-info\n   This file was converted from the original database\n\n"
      "Abdication \\Ab`di*ca\"tion\\, n. [L. abdicatio: cf. F.\n   abdication.]\n"
      "   The act of abdicating; the renunciation of a high office.\n   [1913 Webster]\n\n"
      "Abdicator \\Ab\"di*ca`tor\\, n.\n   One who abdicates, or gives up a throne.\n"
      "   [1913 Webster]\n";
  const auto e = gcide_entries(dict);
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0],
            "Abdication \\Ab`di*ca\"tion\\, n. [L. abdicatio: cf. F. abdication.] The act of "
            "abdicating; the renunciation of a high office.");
  EXPECT_EQ(e[1].find("[1913 Webster]"), std::string::npos);
}

TEST(Corpus, SplitsFortunes) {
  const auto f = fortune_entries(
      "A first fortune that is long enough to keep.\n-- Someone\n%\nshort\n%\n"
      "A last fortune without a trailing percent line, long enough.\n");
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0], "A first fortune that is long enough to keep.\n-- Someone");
}

TEST(Corpus, BuildsFromTheDebianPackages) {
  TempDir d;
  uint64_t last = 0;
  const auto stats = build_default_corpus(d.path / "c", {}, false, [&](uint64_t done, uint64_t) {
    EXPECT_GE(done, last);
    last = done;
  });
  EXPECT_GE(stats.documents, 50'000u);
  EXPECT_GE(stats.bytes, 10'000'000u);
  LocalDataset ds(d.path / "c");
  uint64_t rows = 0;
  for (const auto& c : ds.configs()) rows += c.num_rows;
  EXPECT_EQ(rows, stats.documents);
  EXPECT_EQ(ds.skips().total(), 0u);
  // A second call finds the COMPLETE marker and does nothing.
  const auto again = build_default_corpus(d.path / "c", {}, false);
  EXPECT_EQ(again.documents, stats.documents);
  EXPECT_THROW(build_default_corpus(d.path / "x", {.gcide = d.path / "none.dz"}, false), Error);
}

}  // namespace
}  // namespace bistro

namespace bistro {
namespace {

TEST(Batches, PaddedRowsHoldOneDocumentEach) {
  // Documents are BOS ... EOS (1 ... 2); pad with EOS, no loss on padding.
  const std::vector<std::vector<int32_t>> docs = {{1, 10, 11, 2}, {1, 20, 21, 22, 23, 24, 25, 2}};
  LayoutStats st;
  const auto b = layout_batches(docs, 8, 5, BatchLayout::Padded, 2, &st);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].rows, 2);
  EXPECT_EQ(b[0].inputs, (std::vector<int64_t>{1, 10, 11, 2, 2, 1, 20, 21, 22, 23}));
  EXPECT_EQ(b[0].targets, (std::vector<int64_t>{10, 11, 2, -100, -100, 20, 21, 22, 23, 24}));
  EXPECT_EQ(st.documents, 2u);
  EXPECT_EQ(st.truncated, 1u);
  EXPECT_EQ(st.slots, 10u);
  EXPECT_EQ(st.targets, 8u);
  EXPECT_NEAR(st.padding_fraction(), 0.2, 1e-12);
}

TEST(Batches, PackedRowsConcatenateDocuments) {
  const std::vector<std::vector<int32_t>> docs = {{1, 10, 11, 2}, {1, 20, 21, 2}, {1, 30, 2}};
  LayoutStats st;
  const auto b = layout_batches(docs, 2, 4, BatchLayout::Packed, 2, &st);
  // Stream: 1 10 11 2 1 | 20 21 2 1 30 | 2 -> rows of 5 tokens; the lone last token has no
  // target and forms no row.
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].rows, 2);
  EXPECT_EQ(b[0].inputs, (std::vector<int64_t>{1, 10, 11, 2, 20, 21, 2, 1}));
  EXPECT_EQ(b[0].targets, (std::vector<int64_t>{10, 11, 2, 1, 21, 2, 1, 30}));
  EXPECT_EQ(st.tokens, 11u);
  EXPECT_EQ(st.slots, 8u);
  EXPECT_EQ(st.padding_fraction(), 0.0);
  // A tail of three tokens becomes a padded row.
  const auto t = layout_batches({{1, 10, 11, 2, 1, 20, 2}}, 8, 4, BatchLayout::Packed, 2);
  ASSERT_EQ(t[0].rows, 2);
  EXPECT_EQ(std::vector<int64_t>(t[0].inputs.begin() + 4, t[0].inputs.end()),
            (std::vector<int64_t>{20, 2, 2, 2}));
  EXPECT_EQ(std::vector<int64_t>(t[0].targets.begin() + 4, t[0].targets.end()),
            (std::vector<int64_t>{2, -100, -100, -100}));
  EXPECT_THROW(parse_layout("zigzag"), Error);
}

}  // namespace
}  // namespace bistro

namespace bistro {
namespace {

TEST(McTasks, ParsesHarnessShapedLinesAndNamesBadOnes) {
  const auto items = read_mc_tasks(
      fs::path(std::getenv("BISTRO_SOURCE_DIR") ? std::getenv("BISTRO_SOURCE_DIR") : ".") /
      "tests" / "fixtures" / "mc_tasks.jsonl");
  ASSERT_EQ(items.size(), 6u);  // the blank line is skipped
  EXPECT_EQ(items[0].context, "The cat sat on the");
  EXPECT_EQ(items[0].choices.size(), 4u);
  EXPECT_EQ(items[2].context, "A fool and his money are soon");  // "context" and "label" too
  EXPECT_EQ(items[2].gold, 0u);
  auto error_of = [](std::string_view text) {
    try {
      parse_mc_tasks(text, "t.jsonl");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  const std::string ok = R"({"query": "q", "choices": ["a", "b"], "gold": 1})";
  EXPECT_EQ(error_of(ok + "\n" + "{oops"), "t.jsonl:2: not a JSON object");
  EXPECT_EQ(error_of(R"({"choices": ["a"], "gold": 0})"),
            "t.jsonl:1: no \"query\" or \"context\" string");
  EXPECT_EQ(error_of(R"({"query": "q", "choices": [], "gold": 0})"),
            "t.jsonl:1: \"choices\" must be a non-empty array of strings");
  EXPECT_EQ(error_of(R"({"query": "q", "choices": ["a", 3], "gold": 0})"),
            "t.jsonl:1: \"choices\" must be a non-empty array of strings");
  EXPECT_EQ(error_of(R"({"query": "q", "choices": ["a"], "gold": "0"})"),
            "t.jsonl:1: no integer \"gold\" or \"label\"");
  EXPECT_EQ(error_of(ok + "\n\n" + R"({"query": "q", "choices": ["a", "b"], "gold": 2})"),
            "t.jsonl:3: \"gold\" 2 is not the index of one of its 2 choices");
  EXPECT_EQ(error_of("\n  \n"),
            "t.jsonl: no tasks (expected JSON lines with query, choices and gold)");
  EXPECT_EQ(error_of(ok), "(accepted)");
}

}  // namespace
}  // namespace bistro
