// Just enough XML for S3's answers (ListBucketResult, Error): elements found by name, text with
// the five predefined entities and numeric character references decoded. Treats its input as
// hostile: no recursion, no allocation beyond the result, malformed input yields nothing.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bistro {

// The inner text of every <name ...>...</name> (or <name/>) in document order; elements of the
// same name must not nest.
std::vector<std::string_view> xml_elements(std::string_view xml, std::string_view name);
// The decoded text of the first such element.
std::optional<std::string> xml_text(std::string_view xml, std::string_view name);
std::string xml_decode(std::string_view text);

}  // namespace bistro
