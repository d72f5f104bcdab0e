// Metrics: an opt-in Prometheus text endpoint per process (`--metrics.port`). A neuron sets gauges
// and adds to counters as it works; the server renders them in the Prometheus exposition format
// on GET /metrics from a background thread.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace bistro {

class Metrics {
 public:
  // `labels` is the inside of the braces, e.g. uid="3"; empty for none.
  void set(const std::string& name, double value, const std::string& labels = "");
  void add(const std::string& name, double value, const std::string& labels = "");
  // Declares a metric's help text and type ("gauge" or "counter").
  void describe(const std::string& name, const std::string& help, const std::string& type);
  std::string text() const;  // the Prometheus text format

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, double>> values_;  // name -> labels -> value
  std::map<std::string, std::pair<std::string, std::string>> meta_;
};

class MetricsServer {
 public:
  // Serves `metrics` on 127.0.0.1:port (0: any free port) until destroyed.
  MetricsServer(const Metrics& metrics, int port, const std::string& host = "127.0.0.1");
  ~MetricsServer();
  int port() const { return port_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace bistro
