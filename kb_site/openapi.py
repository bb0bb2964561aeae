"""The OpenAPI 3.1 description of the JSON API, served at /api/openapi.json."""

from __future__ import annotations

from typing import Any

_ERROR = {"description": "The problem, as JSON", "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/Error"}}}}
_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": ["string", "null"]}


def _ok(schema: str) -> dict[str, Any]:
    reference = {"$ref": f"#/components/schemas/{schema}"}
    return {"description": "OK", "content": {"application/json": {"schema": reference}}}


def spec(version: str) -> dict[str, Any]:
    """Return the OpenAPI document."""
    limit = {"type": "integer", "minimum": 1}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Help centre API", "version": version,
                 "description": "Search and read the help centre's published articles. Errors are JSON objects "
                                "with their HTTP status; searches are rate-limited per client (429)."},
        "paths": {
            "/api/search": {"get": {
                "operationId": "search", "summary": "Rank articles for a query (hybrid BM25F + semantic).",
                "parameters": [
                    {"name": "q", "in": "query", "required": True, "schema": _STRING,
                     "description": "Any text; operators and quotes are plain words."},
                    {"name": "category", "in": "query", "schema": _STRING},
                    {"name": "limit", "in": "query", "schema": {**limit, "maximum": 50, "default": 10}},
                    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0,
                                                                  "maximum": 10000, "default": 0}},
                    {"name": "mode", "in": "query", "schema": {"enum": ["hybrid", "lexical", "dense"],
                                                                "default": "hybrid"}},
                    {"name": "spell", "in": "query", "schema": {"enum": ["0", "1"], "default": "1"},
                     "description": "0: search for the words as typed, without correcting a misspelt one."},
                ],
                "responses": {"200": _ok("SearchResults"), "400": _ERROR, "429": _ERROR, "503": _ERROR},
            }},
            "/api/articles": {"get": {
                "operationId": "listArticles", "summary": "List published articles by title.",
                "parameters": [
                    {"name": "category", "in": "query", "schema": _STRING},
                    {"name": "limit", "in": "query", "schema": {**limit, "maximum": 1000, "default": 100}},
                    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0,
                                                                  "maximum": 1000000, "default": 0}},
                ],
                "responses": {"200": _ok("ArticleList"), "400": _ERROR, "503": _ERROR},
            }},
            "/api/articles/{slug}": {"get": {
                "operationId": "getArticle", "summary": "One article with its HTML and sections.",
                "parameters": [{"name": "slug", "in": "path", "required": True, "schema": _STRING}],
                "responses": {"200": _ok("Article"), "301": {"description": "An old slug: see Location"},
                              "404": _ERROR, "503": _ERROR},
            }},
            "/api/categories": {"get": {
                "operationId": "listCategories", "summary": "Categories in display order with article counts.",
                "responses": {"200": _ok("CategoryList"), "503": _ERROR},
            }},
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["status", "title", "message"],
                "properties": {"status": {"type": "integer"}, "title": _STRING, "message": _STRING}}}},
            "Hit": {"type": "object", "required": ["slug", "title", "url", "score"], "properties": {
                "slug": _STRING, "title": _STRING, "url": _STRING, "anchor": _STRING, "section": _STRING,
                "summary": _STRING, "category": _STRING, "snippet": {"type": "string",
                                                                       "description": "HTML: matches in <mark>"},
                "score": {"type": "number"}, "lexical_score": {"type": "number"},
                "dense_score": {"type": ["number", "null"]}}},
            "Answer": {"type": "object", "required": ["slug", "anchor", "url", "text", "score"],
                       "description": "The sentences of the best result's section that answer the query, as "
                                      "written in the article; null when no article answers with confidence.",
                       "properties": {
                "slug": _STRING, "anchor": _STRING, "url": _STRING, "text": _STRING, "score": {"type": "number"},
                "title": _STRING, "section": _STRING,
                "revision": {**_STRING, "description": "The section's content revision, for feedback on it."}}},
            "SearchResults": {"type": "object", "required": ["query", "total", "hits"], "properties": {
                "query": _STRING, "offset": {"type": "integer"},
                "suggestion": {**_NULLABLE_STRING, "description": "The corrected query the hits are for, when "
                               "a misspelt word was corrected (spell=0 searches as typed)."},
                "fallback": {"type": "boolean"}, "took_ms": {"type": "number"},
                "categories": {"type": "object", "additionalProperties": {"type": "integer"}},
                "total": {"type": "integer", "description": "Articles that answer the query with confidence."},
                "answer": {"oneOf": [{"$ref": "#/components/schemas/Answer"}, {"type": "null"}]},
                "hits": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"}},
                "nearest": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"},
                            "description": "When no article answers with confidence (total 0): the closest few, "
                                           "to offer as 'These might help'."}}},
            "ArticleSummary": {"type": "object", "required": ["slug", "title", "url"], "properties": {
                "slug": _STRING, "title": _STRING, "summary": _STRING, "category": _STRING,
                "tags": {"type": "array", "items": _STRING}, "updated": _NULLABLE_STRING, "url": _STRING}},
            "ArticleList": {"type": "object", "required": ["total", "articles"], "properties": {
                "total": {"type": "integer"}, "offset": {"type": "integer"},
                "articles": {"type": "array", "items": {"$ref": "#/components/schemas/ArticleSummary"}}}},
            "Article": {"allOf": [{"$ref": "#/components/schemas/ArticleSummary"}, {"type": "object", "properties": {
                "questions": {"type": "array", "items": _STRING}, "aliases": {"type": "array", "items": _STRING},
                "related": {"type": "array", "items": _STRING}, "revision": _STRING, "html": _STRING,
                "sections": {"type": "array", "items": {"type": "object", "properties": {
                    "anchor": _STRING, "heading": _STRING, "level": {"type": "integer"}, "url": _STRING}}}}}]},
            "CategoryList": {"type": "object", "required": ["categories"], "properties": {"categories": {
                "type": "array", "items": {"type": "object", "properties": {
                    "slug": _STRING, "title": _STRING, "description": _STRING, "articles": {"type": "integer"},
                    "url": _STRING}}}}},
        }},
    }
