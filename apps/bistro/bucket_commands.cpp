// bistro bucket ls | put | get | rm | stat: inspect and debug buckets (file:// or s3://).
#include <fmt/format.h>

#include "bistro/storage/s3_bucket.hpp"
#include "commands.hpp"

namespace bistro::cli {

std::vector<Command> add_bucket_commands(CLI::App& app) {
  std::vector<Command> out;
  auto* bucket = app.add_subcommand(
      "bucket",
      "inspect buckets: file:///dir or s3://name (S3 endpoint from $BISTRO_S3_ENDPOINT, "
      "credentials from $AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY)");
  bucket->require_subcommand(1);
  struct Args {
    std::string url, key, path, prefix;
  };
  auto a = std::make_shared<Args>();

  auto* ls = bucket->add_subcommand("ls", "list objects");
  ls->add_option("url", a->url, "bucket URL")->required();
  ls->add_option("prefix", a->prefix, "key prefix");
  out.push_back({ls, [a] {
                   uint64_t total = 0;
                   const auto objects = open_bucket(a->url)->list(a->prefix);
                   for (const auto& o : objects) {
                     fmt::print("{:>12}  {}\n", o.size, o.key);
                     total += o.size;
                   }
                   fmt::print("{} objects, {} bytes\n", objects.size(), total);
                   return 0;
                 }});
  auto* put = bucket->add_subcommand("put", "upload a file");
  put->add_option("url", a->url, "bucket URL")->required();
  put->add_option("key", a->key, "object key")->required();
  put->add_option("file", a->path, "local file")->required();
  out.push_back({put, [a] {
                   Progress bar("upload " + a->key);
                   open_bucket(a->url, [&](uint64_t d, uint64_t t) {
                     bar.update(d, t);
                   })->put_file(a->key, a->path);
                   fmt::print("put {}/{}\n", a->url, a->key);
                   return 0;
                 }});
  auto* get = bucket->add_subcommand("get", "download an object (atomically)");
  get->add_option("url", a->url, "bucket URL")->required();
  get->add_option("key", a->key, "object key")->required();
  get->add_option("file", a->path, "local file")->required();
  out.push_back({get, [a] {
                   Progress bar("download " + a->key);
                   open_bucket(a->url, [&](uint64_t d, uint64_t t) {
                     bar.update(d, t);
                   })->get_file(a->key, a->path);
                   fmt::print("got {}/{} -> {}\n", a->url, a->key, a->path);
                   return 0;
                 }});
  auto* rm = bucket->add_subcommand("rm", "remove an object");
  rm->add_option("url", a->url, "bucket URL")->required();
  rm->add_option("key", a->key, "object key")->required();
  out.push_back({rm, [a] {
                   open_bucket(a->url)->remove(a->key);
                   return 0;
                 }});
  auto* stat = bucket->add_subcommand("stat", "size and ETag of an object");
  stat->add_option("url", a->url, "bucket URL")->required();
  stat->add_option("key", a->key, "object key")->required();
  out.push_back({stat, [a] {
                   const auto h = open_bucket(a->url)->head(a->key);
                   check(h.has_value(), "{}/{}: no such object", a->url, a->key);
                   fmt::print("{}\tsize {}\tetag {}\n", h->key, h->size, h->etag);
                   return 0;
                 }});
  return out;
}

}  // namespace bistro::cli
