<?php

namespace MediaWiki\Extension\WikiGuard\Hooks;

use MediaWiki\ChangeTags\Hook\ChangeTagsListActiveHook;
use MediaWiki\ChangeTags\Hook\ListDefinedTagsHook;
use MediaWiki\Extension\WikiGuard\Checker;
use MediaWiki\Hook\RecentChange_saveHook;

/**
 * Puts the check's `tag` consequence on the saved change, and registers the tags the
 * filters use so MediaWiki accepts them.
 */
class Tags implements RecentChange_saveHook, ListDefinedTagsHook, ChangeTagsListActiveHook {
	/** @var Checker */
	private $checker;

	/**
	 * @param Checker $checker
	 */
	public function __construct( Checker $checker ) {
		$this->checker = $checker;
	}

	/**
	 * @inheritDoc
	 */
	public function onRecentChange_save( $recentChange ) {
		$title = $recentChange->getTitle();
		$user = $recentChange->getPerformerIdentity()->getName();
		$logType = $recentChange->getAttribute( 'rc_log_type' );
		$kinds = [
			'' => 'edit', 'move' => 'move', 'delete' => 'delete', 'upload' => 'upload',
		];
		$kind = $kinds[(string)$logType] ?? null;
		if ( $kind === null ) {
			return;
		}
		$tags = $this->checker->takeTags( Checker::tagKey( $kind, $user, $title->getPrefixedText() ) );
		if ( $tags ) {
			$recentChange->addTags( $tags );
		}
	}

	/**
	 * @inheritDoc
	 */
	public function onListDefinedTags( &$tags ) {
		$tags = array_merge( $tags, $this->checker->filterTags() );
	}

	/**
	 * @inheritDoc
	 */
	public function onChangeTagsListActive( &$tags ) {
		$tags = array_merge( $tags, $this->checker->filterTags() );
	}
}
