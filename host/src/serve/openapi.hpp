// The OpenAPI 3 document of the REST API: docs/openapi.json, compiled into the binary at build time.
#pragma once

#include <string_view>

namespace cp::serve {
std::string_view openapi_document();
}
