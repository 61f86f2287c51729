"""Ingress codecs: a client's wire format (Anthropic Messages, OpenAI Responses) to the OpenAI chat
request that localgate routes, and the chat result or stream back to the client's format.

Pure translators: no I/O, no asyncio, no aiohttp; the request path (gateway, handlers) calls them.
"""
