<?php

namespace MediaWiki\Extension\WikiGuard\Hooks;

use Content;
use IContextSource;
use MediaWiki\Extension\WikiGuard\Checker;
use MediaWiki\Hook\EditFilterMergedContentHook;
use MediaWiki\Hook\TitleMoveHook;
use MediaWiki\Hook\UploadStashFileHook;
use MediaWiki\Hook\UploadVerifyUploadHook;
use MediaWiki\MediaWikiServices;
use MediaWiki\Page\Hook\ArticleDeleteHook;
use ParserOptions;
use Status;
use StatusValue;
use TextContent;
use Title;
use UploadBase;
use User;
use WikiPage;

/**
 * Sends edits, moves, deletions and uploads to the check door before MediaWiki saves them.
 */
class FilteredActions implements
	EditFilterMergedContentHook,
	TitleMoveHook,
	ArticleDeleteHook,
	UploadVerifyUploadHook,
	UploadStashFileHook
{
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
	public function onEditFilterMergedContent( IContextSource $context, Content $content, Status $status,
		$summary, User $user, $minoredit
	) {
		$title = $context->getTitle();
		if ( !$this->checker->checks( 'edit' ) || !$title || !$title->canExist() ) {
			return true;
		}
		$start = microtime( true );
		$result = $this->checker->guarded( function () use ( $content, $summary, $user, $minoredit, $title ) {
			return $this->checkEdit( $content, (string)$summary, $user, (bool)$minoredit, $title );
		} );
		$this->checker->logDuration( 'edit', $start );
		if ( $result->isOK() ) {
			return true;
		}
		$status->merge( $result );
		return false;
	}

	/**
	 * @param Content $content
	 * @param string $summary
	 * @param User $user
	 * @param bool $minoredit
	 * @param Title $title
	 * @return StatusValue
	 */
	private function checkEdit( Content $content, string $summary, User $user, bool $minoredit, Title $title ): StatusValue {
		[ $page, $oldText, $oldModel ] = $this->checker->currentPage( $title );
		$action = $this->checker->base( 'edit', $user );
		$action['page'] = $page;
		$action['summary'] = $summary;
		$action['minor'] = $minoredit;
		$action['old_wikitext'] = $oldText;
		$action['new_wikitext'] = $content instanceof TextContent ? $content->getText() : '';
		if ( $oldModel !== null ) {
			$action['old_content_model'] = $oldModel;
		}
		$action['new_content_model'] = $content->getModel();
		$wanted = $this->checker->wantedVariables( 'edit' );
		if ( $wanted ) {
			$this->renderedVariables( $action, $wanted, $content, $title, $user );
		}
		return $this->checker->check( $action, $user,
			Checker::tagKey( 'edit', $user->getName(), $title->getPrefixedText() ) );
	}

	/**
	 * Adds new_pst and new_html (from which the service derives new_text and the *_pst
	 * variables), only because a filter reads one of them.
	 *
	 * @param array &$action
	 * @param string[] $wanted
	 * @param Content $content
	 * @param Title $title
	 * @param User $user
	 */
	private function renderedVariables( array &$action, array $wanted, Content $content, Title $title, User $user ): void {
		$services = MediaWikiServices::getInstance();
		$options = ParserOptions::newFromUser( $user );
		$pst = $services->getContentTransformer()->preSaveTransform( $content, $title, $user, $options );
		if ( array_intersect( $wanted, [ 'new_pst', 'added_lines_pst', 'edit_diff_pst' ] ) && $pst instanceof TextContent ) {
			$action['new_pst'] = $pst->getText();
		}
		if ( array_intersect( $wanted, [ 'new_html', 'new_text' ] ) ) {
			$output = $services->getContentRenderer()->getParserOutput( $pst, $title, null, $options );
			$action['new_html'] = $output->getText();
		}
	}

	/**
	 * @inheritDoc
	 */
	public function onTitleMove( Title $old, Title $nt, User $user, $reason, Status &$status ) {
		if ( !$this->checker->checks( 'move' ) ) {
			return;
		}
		$status->merge( $this->checker->guarded( function () use ( $old, $nt, $user, $reason ) {
			$action = $this->checker->base( 'move', $user );
			$action['page'] = $this->checker->pageFacts( $old );
			$action['target'] = $this->checker->pageFacts( $nt );
			$action['summary'] = (string)$reason;
			return $this->checker->check( $action, $user,
				Checker::tagKey( 'move', $user->getName(), $old->getPrefixedText() ) );
		} ) );
	}

	/**
	 * @inheritDoc
	 */
	public function onArticleDelete( WikiPage $wikiPage, User $user, &$reason, &$error, Status &$status, $suppress ) {
		if ( $suppress || !$this->checker->checks( 'delete' ) ) {
			// Suppressions are not filtered (as AbuseFilter, T71617).
			return true;
		}
		$title = $wikiPage->getTitle();
		$result = $this->checker->guarded( function () use ( $title, $user, $reason ) {
			$action = $this->checker->base( 'delete', $user );
			$action['page'] = $this->checker->pageFacts( $title );
			$action['summary'] = (string)$reason;
			return $this->checker->check( $action, $user,
				Checker::tagKey( 'delete', $user->getName(), $title->getPrefixedText() ) );
		} );
		if ( $result->isOK() ) {
			return true;
		}
		$status->merge( $result );
		return false;
	}

	/**
	 * @inheritDoc
	 */
	public function onUploadVerifyUpload( UploadBase $upload, User $user, ?array $props, $comment, $pageText, &$error ) {
		return $this->upload( 'upload', $upload, $user, $props, (string)$comment, (string)$pageText, $error );
	}

	/**
	 * @inheritDoc
	 */
	public function onUploadStashFile( UploadBase $upload, User $user, ?array $props, &$error ) {
		return $this->upload( 'stashupload', $upload, $user, $props, '', '', $error );
	}

	/**
	 * @param string $kind upload or stashupload
	 * @param UploadBase $upload
	 * @param User $user
	 * @param array|null $props the file's properties, as MediaWiki computed them
	 * @param string $comment
	 * @param string $pageText the file description page's text
	 * @param mixed &$error set to the message when refused
	 * @return bool
	 */
	private function upload( string $kind, UploadBase $upload, User $user, ?array $props, string $comment,
		string $pageText, &$error
	): bool {
		if ( !$this->checker->checks( $kind ) ) {
			return true;
		}
		$title = $upload->getTitle();
		if ( !$title ) {
			return true;
		}
		$result = $this->checker->guarded( function () use ( $kind, $upload, $user, $props, $comment, $pageText, $title ) {
			return $this->checkUpload( $kind, $upload, $user, $props, $comment, $pageText, $title );
		} );
		if ( $result->isOK() ) {
			return true;
		}
		$error = self::firstMessage( $result );
		return false;
	}

	/**
	 * @param string $kind
	 * @param UploadBase $upload
	 * @param User $user
	 * @param array|null $props
	 * @param string $comment
	 * @param string $pageText
	 * @param Title $title
	 * @return StatusValue
	 */
	private function checkUpload( string $kind, UploadBase $upload, User $user, ?array $props, string $comment,
		string $pageText, Title $title
	): StatusValue {
		if ( $props === null ) {
			$props = \FSFile::getPropsFromPath( $upload->getTempPath() );
		}
		[ $page, $oldText ] = $this->checker->currentPage( $title );
		$action = $this->checker->base( $kind, $user );
		$action['page'] = $page;
		$action['summary'] = $comment;
		$action['old_wikitext'] = $oldText;
		$action['new_wikitext'] = $pageText;
		$file = [];
		if ( isset( $props['sha1'] ) ) {
			$file['sha1'] = \Wikimedia\base_convert( (string)$props['sha1'], 36, 16, 40 );
		}
		if ( isset( $props['size'] ) ) {
			$file['size'] = (int)$props['size'];
		}
		foreach ( [ 'mime' => 'mime', 'media_type' => 'mediatype' ] as $from => $to ) {
			if ( isset( $props[$from] ) ) {
				$file[$to] = (string)$props[$from];
			}
		}
		foreach ( [ 'width' => 'width', 'height' => 'height', 'bits' => 'bits_per_channel' ] as $from => $to ) {
			if ( isset( $props[$from] ) ) {
				$file[$to] = (int)$props[$from];
			}
		}
		$action['file'] = $file;
		return $this->checker->check( $action, $user,
			Checker::tagKey( 'upload', $user->getName(), $title->getPrefixedText() ) );
	}

	/**
	 * The first error of a status, as the message (an ApiMessage) hooks that take one want.
	 *
	 * @param StatusValue $status
	 * @return mixed
	 */
	private static function firstMessage( StatusValue $status ) {
		$errors = $status->getErrors();
		return $errors[0]['message'];
	}
}
