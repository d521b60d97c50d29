"""The pieces of ``bench/fakes3.py``: a fast, virtual, S3-compatible endpoint.

Data flows one way: ``http`` reads a request, ``s3api`` routes it (``router``)
to a handler, the handler applies S3's rules on the ``store`` and renders the
answer, ``http`` writes it (after the injected delay).

``http``       HTTP/1.1 on a raw ``asyncio.Protocol``, keep-alive, delayed answers
``s3api``      the application: operation → handler, S3 XML errors, latency, stats
``router``     which operation a request is; path-style or virtual-host bucket
``buckets``    bucket handlers and listings
``objects``    object handlers: head, get, put, delete, CopyObject, tagging, ACL
``multipart``  multipart handlers, UploadPartCopy among them
``admin``      ``/__stats``, ``/__stats/reset`` and ``/__seed``
``env``        what handlers share (store, stats, copy bandwidth) and parse helpers
``store``      buckets, virtual objects and uploads, with S3's rules
``ranges``     byte-range headers
``render``     the XML bodies
``errors``     ``S3Error``
``stats``      request counts and the most requests in flight at once
"""
