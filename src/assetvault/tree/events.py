"""The domain events of the tree, as the write path appends them to the outbox.

Each row carries the type, the node's id and path (at the time of the event), the acting
user (null for the system) and a small ``data`` object described here. The events issue
turns these into AEM's CloudEvents; the search indexer reads them to stay current.
"""

from __future__ import annotations

ASSET_CREATED = "asset.created"  # data: size, mimeType, sha1
ORIGINAL_REPLACED = "asset.original_replaced"  # size, mimeType, sha1, previousSha1, versionKept,
# and restoredFrom (a version name) when a kept version was restored
PROCESSING_RESTARTED = "asset.processing_restarted"
# renditions (names made), mimeType, and sha1 when processing was the first to read the
# original (a direct upload to an object store, whose asset.created had sha1 null)
PROCESSING_COMPLETED = "asset.processing_completed"
PROCESSING_FAILED = "asset.processing_failed"  # reason, and sha1 as processing_completed
RENDITION_STORED = "asset.rendition_stored"  # name, size, new
RENDITION_DELETED = "asset.rendition_deleted"  # name ("original" for the original binary)
COMMENT_ADDED = "asset.comment_added"  # commentId
DOWNLOADED = "asset.downloaded"  # rendition ("original" or a rendition's name)
RELATION_ADDED = "asset.relation_added"  # relationType, relatedId
RELATION_REMOVED = "asset.relation_removed"  # relationType, relatedId
FOLDER_CREATED = "folder.created"
# A content fragment's elements or variations changed (its title, description and
# metadata raise metadata_updated): elements (names whose master value or type changed),
# variations (names of the variations that changed or were made), revision.
FRAGMENT_UPDATED = "asset.fragment_updated"
# Publish state (target AEM_PUBLISH). Published: publishedAt; both carry reason
# ("request", "moved" or "deleted"): moving a published asset unpublishes it at the old
# path and publishes it at the new one, deleting one unpublishes it first, as AEM does.
PUBLISHED = "asset.published"
UNPUBLISHED = "asset.unpublished"

# By the node's kind. metadata_updated: previous (the earlier value of every key that
# changed, null where there was none), revision (the node's, after the change);
# moved: from, to (paths); copied: sourceId, sourcePath (the event's node is the copy).
METADATA_UPDATED = {"asset": "asset.metadata_updated", "folder": "folder.metadata_updated"}
MOVED = {"asset": "asset.moved", "folder": "folder.moved"}
COPIED = {"asset": "asset.copied", "folder": "folder.copied"}
DELETED = {"asset": "asset.deleted", "folder": "folder.deleted"}

# Relation types stored from both ends (relating A to B relates B to A).
TWO_WAY_RELATIONS = {"others"}

# An import job ended (node null; the acting user is who submitted it). data: jobId,
# operation (aem.assets.import.fromurl | aem.assets.import.fromsource), status
# (COMPLETED | COMPLETED_WITH_ERRORS | FAILED), folder (the target's URN), folderPath,
# counts {imported, failed, total}, assetIds (of the imported assets, in request order).
IMPORT_COMPLETED = "import.completed"
