#include "bistro/core/metrics.hpp"

#include <fmt/format.h>
#include <httplib.h>

#include <thread>

#include "bistro/core/error.hpp"

namespace bistro {

void Metrics::set(const std::string& name, double value, const std::string& labels) {
  std::lock_guard lock(mu_);
  values_[name][labels] = value;
}

void Metrics::add(const std::string& name, double value, const std::string& labels) {
  std::lock_guard lock(mu_);
  values_[name][labels] += value;
}

void Metrics::describe(const std::string& name, const std::string& help, const std::string& type) {
  std::lock_guard lock(mu_);
  meta_[name] = {help, type};
}

std::string Metrics::text() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, series] : values_) {
    if (auto m = meta_.find(name); m != meta_.end())
      out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, m->second.first, name,
                         m->second.second);
    for (const auto& [labels, v] : series)
      out += labels.empty() ? fmt::format("{} {}\n", name, v)
                            : fmt::format("{}{{{}}} {}\n", name, labels, v);
  }
  return out;
}

struct MetricsServer::Impl {
  httplib::Server server;
  std::thread thread;
};

MetricsServer::MetricsServer(const Metrics& metrics, int port, const std::string& host)
    : impl_(std::make_unique<Impl>()) {
  impl_->server.Get("/metrics", [&metrics](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.text(), "text/plain; version=0.0.4");
  });
  if (port == 0) {
    port_ = impl_->server.bind_to_any_port(host);
  } else {
    port_ = impl_->server.bind_to_port(host, port) ? port : -1;
  }
  check(port_ > 0, "metrics: cannot listen on {}:{}", host, port);
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
}

MetricsServer::~MetricsServer() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace bistro
