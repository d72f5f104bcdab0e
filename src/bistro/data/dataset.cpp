#include "bistro/data/dataset.hpp"

#include "bistro/core/compression.hpp"

namespace bistro {

void add_document(std::string doc, std::vector<std::string>& out, SkipCounts& skips) {
  if (!valid_utf8(doc)) {
    ++skips.bad_utf8;
  } else if (doc.find_first_not_of(" \t\r\n") == std::string::npos) {
    ++skips.empty;
  } else {
    out.push_back(std::move(doc));
  }
}

}  // namespace bistro
